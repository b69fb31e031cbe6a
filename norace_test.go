//go:build !race

package swoole

const raceEnabled = false
