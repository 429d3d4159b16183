// Package prom exposes the metrics of mtcp listeners and dialers to
// Prometheus, through a registerer the caller passes (never the global one).
package prom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/migratory/mtcp"
)

// Metrics is an mtcp.Metrics that counts into Prometheus collectors.
type Metrics struct {
	opened    prometheus.Counter
	ended     *prometheus.CounterVec
	resumes   prometheus.Counter
	moves     prometheus.Counter
	failovers prometheus.Counter
	pauses    *prometheus.HistogramVec
}

// New registers mtcp's collectors with reg, their names prefixed with
// namespace (e.g. "myapp": "myapp_mtcp_sessions_opened_total").
func New(reg prometheus.Registerer, namespace string) (*Metrics, error) {
	m := &Metrics{
		opened: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "mtcp",
			Name: "sessions_opened_total", Help: "Sessions opened."}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "mtcp",
			Name: "sessions_ended_total", Help: "Sessions ended, by outcome (closed or lost)."}, []string{"outcome"}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "mtcp",
			Name: "resumes_total", Help: "Sessions resumed on a new link of the same server."}),
		moves: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "mtcp",
			Name: "moves_total", Help: "Sessions moved to another pool member (live migration)."}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "mtcp",
			Name: "failovers_total", Help: "Sessions taken over from the replicas of a member that was gone."}),
		pauses: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "mtcp",
			Name: "pause_seconds", Help: "How long data stopped for a resume, a move or a failover.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.opened, m.ended, m.resumes, m.moves, m.failovers, m.pauses} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SessionOpened counts a new session.
func (m *Metrics) SessionOpened() { m.opened.Inc() }

// SessionEnded counts an ended session.
func (m *Metrics) SessionEnded(lost bool) {
	outcome := "closed"
	if lost {
		outcome = "lost"
	}
	m.ended.WithLabelValues(outcome).Inc()
}

// Resumed counts a resume and its pause.
func (m *Metrics) Resumed(pause time.Duration) {
	m.resumes.Inc()
	m.pauses.WithLabelValues("resume").Observe(pause.Seconds())
}

// Moved counts a live migration and its pause.
func (m *Metrics) Moved(pause time.Duration) {
	m.moves.Inc()
	m.pauses.WithLabelValues("move").Observe(pause.Seconds())
}

// FailedOver counts a failover and its pause.
func (m *Metrics) FailedOver(pause time.Duration) {
	m.failovers.Inc()
	m.pauses.WithLabelValues("failover").Observe(pause.Seconds())
}

// RegisterListener adds gauges read from ln.Status at each scrape: the
// sessions held and the bytes they retain and buffer.
func RegisterListener(reg prometheus.Registerer, namespace string, ln *mtcp.Listener) error {
	gauge := func(name, help string, f func(mtcp.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "mtcp", Name: name, Help: help},
			func() float64 { return f(ln.Status()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("sessions", "Sessions held (attached or waiting for their client).", func(s mtcp.Status) float64 {
			return float64(len(s.Sessions))
		}),
		gauge("retained_bytes", "Output bytes kept until clients have them.", func(s mtcp.Status) float64 {
			t := 0
			for _, x := range s.Sessions {
				t += x.Retained
			}
			return float64(t)
		}),
		gauge("buffered_bytes", "Input bytes waiting for the application.", func(s mtcp.Status) float64 {
			t := 0
			for _, x := range s.Sessions {
				t += x.Buffered
			}
			return float64(t)
		}),
		gauge("sessions_at_risk", "Sessions that checkpoint yet would be lost if this member crashed: their checkpoints lack copies.",
			func(s mtcp.Status) float64 { return float64(s.AtRisk) }),
		gauge("members", "Pool members this one sees (itself included).", func(s mtcp.Status) float64 {
			return float64(len(s.Members))
		}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var _ mtcp.Metrics = (*Metrics)(nil)
