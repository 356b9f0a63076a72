package outbox

// The outbox's batch statements, for the plan tests (package outbox_test,
// which builds its runs through the store) to run under EXPLAIN ANALYZE.
const (
	ClaimHeads       = claimHeads
	LockTaskRuns     = lockTaskRuns
	CompleteTasks    = completeTasks
	ReleaseTasks     = releaseTasks
	LeaseTasks       = leaseTasks
	DueDispatchHeads = dueDispatchHeads
	StackFree        = stackFree
	StackHeld        = stackHeld
	StackHeads       = stackHeads
)

// ParkFor is how long a dispatch waiting for its stack is parked.
const ParkFor = parkFor
