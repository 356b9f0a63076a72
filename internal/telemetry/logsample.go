package telemetry

import (
	"time"

	"go.uber.org/zap/zapcore"
)

// AccessLine is the message of the router's line for every request.
const AccessLine = "http"

// SampleAccessLine is paved's logger's sampling: the access line only, as
// zap's production preset samples (the first 100 a second, then every
// 100th).
func SampleAccessLine(core zapcore.Core) zapcore.Core {
	return SampleOnly(core, AccessLine, time.Second, 100, 100)
}

// SampleOnly returns core with only the entries whose message is msg
// sampled: in each tick, the first `first` of a level, then every
// thereafter-th. zap's production preset samples every message so; paved
// samples only its access line ("http", one a request: the metrics count
// requests and their latencies anyway), because a burst of more than 100 a
// second would otherwise drop 99 in 100 of, say, its "run recorded" lines,
// and with them the run ids and refusal reasons operators search for.
func SampleOnly(core zapcore.Core, msg string, tick time.Duration, first, thereafter int) zapcore.Core {
	return &sampleOnly{Core: core, sampled: zapcore.NewSamplerWithOptions(core, tick, first, thereafter), msg: msg}
}

type sampleOnly struct {
	zapcore.Core
	sampled zapcore.Core
	msg     string
}

func (c *sampleOnly) With(fields []zapcore.Field) zapcore.Core {
	return &sampleOnly{Core: c.Core.With(fields), sampled: c.sampled.With(fields), msg: c.msg}
}

func (c *sampleOnly) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == c.msg {
		return c.sampled.Check(e, ce)
	}
	return c.Core.Check(e, ce)
}
