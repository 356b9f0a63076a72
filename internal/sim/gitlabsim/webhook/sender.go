package webhook

import (
	"context"
	"net/http"
	"time"
)

// Job is one queued hook delivery.
type Job struct {
	Index   int // the queuer's record of this delivery
	URL     string
	Token   string
	UUID    string
	Payload []byte
}

// Sender delivers queued hooks one at a time, in order, retrying failed
// deliveries a few times before giving up.
type Sender struct {
	client    *http.Client
	retries   int
	queue     chan Job
	attempted func(Job, error) // told the outcome of every attempt
	gaveUp    func(Job)        // told of a job whose retries ran out
}

// NewSender makes a Sender that posts with client, retries a failed
// delivery retries times (negative means none) and queues up to size jobs.
func NewSender(client *http.Client, retries, size int, attempted func(Job, error), gaveUp func(Job)) *Sender {
	return &Sender{client: client, retries: retries, queue: make(chan Job, size), attempted: attempted, gaveUp: gaveUp}
}

// Enqueue queues j without waiting; it reports false when the queue is full.
func (s *Sender) Enqueue(j Job) bool {
	select {
	case s.queue <- j:
		return true
	default:
		return false
	}
}

// Run delivers queued jobs until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.queue:
			s.deliver(ctx, j)
		}
	}
}

func (s *Sender) deliver(ctx context.Context, j Job) {
	attempts := 1 + max(0, s.retries)
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-time.After(time.Duration(10<<i) * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
		err := Post(ctx, s.client, j.URL, j.Token, j.UUID, j.Payload)
		s.attempted(j, err)
		if err == nil {
			return
		}
	}
	s.gaveUp(j)
}

// Delivery records one Pipeline Hook the simulator meant to send.
type Delivery struct {
	PipelineID int64
	Status     string
	EventUUID  string
	Attempts   int
	Delivered  bool
	Dropped    bool // dropped by fault injection (or a full queue); never sent
	LastError  string
}
