# kubeworker: the two commands a newcomer needs are `make demo` and `make test`.
GO ?= go

.PHONY: demo test check provision cluster fuzz bench bench-suite soak

# The library's main job, end to end: start the local control plane
# (building it on first use), run one Job through a Worker, stream its log
# and print the Result.
demo:
	$(GO) run ./examples/runjob

# Every test, race detector on, end-to-end ones included against the local
# control plane (its binaries are built into the user cache on first use).
test: check provision
	$(GO) test -race -count=1 -timeout 30m ./...

# Formatting and vet: a red mark here fails CI like a failing test.
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
# and Kueue (clustertest's own tests start it) into the cache if they are
# missing (about 15 minutes cold on 2 cores, plus 5.5 for Kueue).
provision:
	$(GO) run ./cmd/kubeworker cluster provision --kueue

# Start a local cluster by hand; it prints how to point kubectl at it.
cluster: provision
	$(GO) run ./cmd/kubeworker cluster up

# Fuzz every target for FUZZTIME each (default 1m).
FUZZTIME ?= 1m
fuzz:
	@for pkg in ./manifest ./clusterid ./secrets ./jobwatch ./kubeconfig; do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Micro-benchmarks of the pure packages, and jobwatch's scale figures.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./manifest ./jobwatch

# The suite of BENCHMARKS.md on a local cluster of its own; rewrites the
# table there. Run it on a quiet machine (about 15 minutes).
SIZES ?= 1000,5000
bench-suite: provision
	$(GO) run ./internal/benchsuite/cmd/bench -sizes $(SIZES) -o BENCHMARKS.md


# The long mixed-fault soak of RELIABILITY.md: runs and faults for
# DURATION, then the last Results; SEED reruns one (0: from the clock).
# Prints every violation with its run and seed; the figures go to
# soak-report.txt. `make test` runs a 90-second soak.
DURATION ?= 30m
SEED ?= 0
soak: provision
	$(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./internal/soak -args \
	  -soak.duration=$(DURATION) -soak.seed=$(SEED) -soak.rate=30 -soak.maxrun=3m \
	  -soak.faultevery=20s -soak.burst=2000 -soak.report=$(CURDIR)/soak-report.txt
