# paved — the two commands: `make demo` and `make test`.
GO        ?= go
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME  ?=
PKGS      := ./...

.PHONY: demo test lint unit e2e e2e-postgres fuzz-short fuzz chaos crash faults replicas build test-busy browser backstage

## demo: run paved end to end against simulated Port and GitLab (< 1 minute)
demo:
	$(GO) run ./cmd/paved demo

## test: the whole default suite, as CI runs it
test: lint unit e2e-postgres fuzz-short

## lint: gofmt, go vet and staticcheck must be clean, and go.mod tidy
lint:
	@if ! $(GO) mod tidy -diff >/dev/null 2>&1; then echo "go.mod/go.sum are not tidy (go mod tidy -diff):"; $(GO) mod tidy -diff; exit 1; fi
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

## unit: unit, integration and end-to-end tests (race detector on). The
## golden path (internal/provision, cmd/provision) runs without it: it is
## single-goroutine code over the Pulumi provider SDKs, whose race build
## costs minutes and gigabytes on a cold cache and finds nothing there.
PROVISION := ./internal/provision/... ./cmd/provision/...
unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list $(PKGS) | grep -v -e /internal/provision -e /cmd/provision)
	$(GO) test -count=1 -timeout 15m $(PROVISION)

## test-busy: the race-enabled suite three times in a row while two busy
## loops saturate both cores: no test may depend on the machine's speed.
test-busy:
	@pids=""; for i in 1 2; do sh -c 'while :; do :; done' & pids="$$pids $$!"; done; \
	trap "kill $$pids" EXIT; \
	for n in 1 2 3; do echo "== run $$n of 3, both cores saturated"; $(GO) test -race -count=1 -timeout 30m $$($(GO) list $(PKGS) | grep -v -e /internal/provision -e /cmd/provision) || exit 1; done

## e2e-postgres: the end-to-end suite again, with paved on PostgreSQL
e2e-postgres:
	PAVED_E2E_STORE=postgres $(GO) test -race -count=1 -timeout 15m ./test/e2e

## fuzz-short: each fuzz target for a fixed number of inputs (a few seconds'
## worth): a count, not a duration, because Go 1.26's fuzz coordinator can fail a
## duration run at its own deadline on a busy machine (go.dev/issue/75804).
## FUZZTIME (a duration or a count) overrides it for every target.
fuzz-short:
	@set -e; for t in internal/portal/port/webhook:FuzzVerifyDecode:20000x internal/config:FuzzParse:10000x internal/catalog:FuzzLoadAction:400x internal/gitlab/pipelinehook:FuzzDecode:10000x; do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$(or $(FUZZTIME),$${rest#*:}); \
		echo "fuzz $$fn ($$pkg, $$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $$n ./$$pkg; \
	done

## fuzz: a long fuzzing session (FUZZTIME=10m make fuzz)
fuzz: FUZZTIME=10m
fuzz: fuzz-short

## chaos: the crash and fault suites in long mode (1,000 runs; 25 SIGKILLs)
chaos: crash faults

crash:
	PAVED_CHAOS_RUNS=$${PAVED_CHAOS_RUNS:-1000} PAVED_CHAOS_KILLS=$${PAVED_CHAOS_KILLS:-25} $(GO) test -count=1 -v -timeout 60m -run '^TestCrash$$' ./test/chaos

## replicas: two paved processes on one PostgreSQL, 1,000 actions, one replica SIGKILLed
replicas:
	PAVED_CHAOS_RUNS=$${PAVED_CHAOS_RUNS:-1000} $(GO) test -count=1 -v -timeout 60m -run '^TestReplicas$$' ./test/chaos

faults:
	PAVED_CHAOS_RUNS=$${PAVED_CHAOS_RUNS:-1000} $(GO) test -count=1 -v -timeout 60m -run '^TestFaults$$' ./test/chaos

build:
	$(GO) build -o bin/paved ./cmd/paved

## browser: the operator page driven in Debian's Chromium (installs
## chromium and playwright-core when missing; writes docs/operator*.png)
browser:
	.ci/browser.sh

## backstage: the paved:run scaffolder action (deploy/backstage) type-checked
## and its jest suite run against the real paved (installs node and the
## npm packages when missing)
backstage:
	.ci/backstage.sh

## load: the load harness (test/load; BENCHMARKS.md), then the micro-benchmarks
## summarised by benchstat. Full mode takes tens of minutes;
## PAVED_LOAD_MODE=quick make load checks the harness in a few.
.PHONY: load
BENCHCOUNT ?= 6
load:
	@status=0; PAVED_LOAD=1 $(GO) test -count=1 -v -timeout 60m -run '^TestLoad$$' ./test/load || status=$$?; \
	out=$$(mktemp); \
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./internal/policy ./internal/portal/port/webhook | tee $$out; \
	$(GO) test -run '^$$' -bench ClaimBacklog -benchmem -count $(BENCHCOUNT) ./internal/store/sqlite | tee -a $$out; \
	$(GO) run golang.org/x/perf/cmd/benchstat@latest $$out || echo "benchstat unavailable: the raw figures are above"; \
	rm -f $$out; exit $$status
