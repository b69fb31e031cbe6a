package swoole

import (
	"fmt"
	"strconv"
	"time"
)

func nanotime() int64 { return time.Now().UnixNano() }

// unixFloat turns Unix nanoseconds into Unix seconds with a fraction (0 stays 0).
func unixFloat(ns int64) float64 {
	if ns == 0 {
		return 0
	}
	return float64(ns) / 1e9
}

func fmtType(v any) string { return fmt.Sprintf("%T", v) }

func fmtInt(v int64) string { return strconv.FormatInt(v, 10) }
