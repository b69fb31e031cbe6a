#!/usr/bin/env bash
# Builds Swoole 6.2.2 (the PHP extension) from source outside the repository and prints the path
# of swoole.so on stdout; everything else goes to stderr.
#
# Usage: bench/swoole/build.sh [-s SRC] [-d DIR] [-t TAG]
#   -s  the source: a bare git directory of github:swoole/swoole-src holding TAG, or a directory
#       with the unpacked source (default: $SWOOLE_SRC_GIT, else the first of
#       /work/.mirror/swoole+swoole-src*/repo or ~/src/swoole-src that exists)
#   -d  build directory (default: $HOME/.cache/goswoole-bench/swoole-6.2.2); reused when it already
#       holds modules/swoole.so, so a second call only prints the path
#   -t  the git tag (default v6.2.2)
# Needs php8.2-cli and php8.2-dev (phpize, php-config) and the libraries below; apt-get installs
# those that are missing when apt-get is there (run as root). About five minutes on two cores.
# Check: php -d extension="$(bench/swoole/build.sh)" --ri swoole | head -3   # Version => 6.2.2
# The build is never part of the repository: do not commit it.
set -euo pipefail

tag=v6.2.2 src=${SWOOLE_SRC_GIT:-} dir=
while getopts "s:d:t:h" opt; do
	case $opt in
	s) src=$OPTARG ;;
	d) dir=$OPTARG ;;
	t) tag=$OPTARG ;;
	*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[ -n "$dir" ] || dir=${HOME:-/tmp}/.cache/goswoole-bench/swoole-${tag#v}
so=$dir/modules/swoole.so

if [ -f "$so" ]; then
	echo "$so"
	exit 0
fi

if [ -z "$src" ]; then
	for c in /work/.mirror/swoole+swoole-src*/repo "$HOME/src/swoole-src"; do
		[ -e "$c" ] && { src=$c; break; }
	done
fi
[ -n "$src" ] && [ -e "$src" ] || {
	echo "build.sh: no Swoole source: pass -s (a bare git directory of github:swoole/swoole-src, or an unpacked tree) or set SWOOLE_SRC_GIT" >&2
	exit 1
}

# The packages: only those missing, and only where apt-get can install them.
pkgs=(php8.2-cli php8.2-dev libssl-dev libbrotli-dev zlib1g-dev pkg-config autoconf libcurl4-openssl-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
		echo "build.sh: installing ${missing[*]}" >&2
		apt-get update >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
	else
		echo "build.sh: missing packages: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})" >&2
		exit 1
	fi
fi
command -v phpize >/dev/null || { echo "build.sh: phpize not found (php8.2-dev)" >&2; exit 1; }

# The source into a fresh directory beside the final one; renamed into place only when built,
# so an interrupted build never passes for a finished one.
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$dir.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -d "$src/objects" ] || git --git-dir="$src" rev-parse --git-dir >/dev/null 2>&1; then
	echo "build.sh: $tag from $src into $dir" >&2
	git --git-dir="$src" archive "$tag" | tar -x -C "$tmp"
else
	echo "build.sh: unpacked source $src into $dir" >&2
	cp -a "$src"/. "$tmp"/
fi
(
	cd "$tmp"
	phpize >&2
	./configure --enable-brotli >&2
	make -j"$(nproc)" >&2
)
[ -f "$tmp/modules/swoole.so" ] || { echo "build.sh: make finished without modules/swoole.so" >&2; exit 1; }
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$so"
