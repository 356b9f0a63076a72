package telemetry

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A burst within one tick: the access lines are sampled (the first 100,
// then every 100th), every other line is kept, fields added With included.
func TestSampleOnlySamplesTheAccessLineOnly(t *testing.T) {
	obs, logs := observer.New(zapcore.InfoLevel)
	core := SampleOnly(obs, "http", time.Second, 100, 100).With([]zapcore.Field{zap.String("service", "paved")})
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) // one instant: the whole burst in one tick
	write := func(msg string, n int) {
		for i := range n {
			e := zapcore.Entry{Level: zapcore.InfoLevel, Time: at, Message: msg}
			if ce := core.Check(e, nil); ce != nil {
				ce.Write(zap.Int("i", i))
			}
		}
	}
	write("http", 1000)
	write("run recorded", 1000)
	if got := logs.FilterMessage("http").Len(); got != 109 {
		t.Errorf("access lines kept: %d, want 109 (100, then every 100th of 900)", got)
	}
	recorded := logs.FilterMessage("run recorded")
	if recorded.Len() != 1000 {
		t.Errorf("run lines kept: %d, want all 1000", recorded.Len())
	}
	if f := recorded.All()[0].ContextMap(); f["service"] != "paved" || f["i"] != int64(0) {
		t.Errorf("fields of a kept line: %v", f)
	}
	if core.Check(zapcore.Entry{Level: zapcore.DebugLevel, Time: at, Message: "run recorded"}, nil) != nil {
		t.Error("a line below the level passed")
	}
}
