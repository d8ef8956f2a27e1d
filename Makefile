# lmig top-level Makefile.
#   make          build user/lmig
#   make demo     install what is missing, then a live migration of a busy 1 GiB memfd
#                 between two network namespaces (scripts/demo.sh --cold: the cold one)
#   make check    install what is missing, build, run every selftest
#   make vmcheck  only the tests that boot Debian's kernels in a VM (lmig.ko, soft-dirty)
#   make vmcheck-debug  lmig.ko's tests and kmod stress cases in a VM booting a
#                 6.1 kernel built with KASAN and lockdep (built once, cached;
#                 selftests/vm/README.md)
#   make bench    benchmark tables (Documentation/benchmarks.md explains them)
#   make reliability  kill -9 in every phase and faults on the wire, counted
#                 (Documentation/reliability.md; RELIABILITY_QUICK=1 for a short run)
#   make fuzz     each libFuzzer harness for FUZZ_TIME seconds (default 600; fuzz/,
#                 Documentation/fuzzing.md)
# V=1 shows the commands.

DEPS := scripts/install-deps.sh

all: user

user:
	@$(MAKE) -C user --no-print-directory

deps-%:
	@sh $(DEPS) $*

demo: deps-demo user
	@sh scripts/demo.sh

check: deps-check user
	@$(MAKE) -C selftests --no-print-directory run

# The selftests that run in a VM (selftests/vm): lmig.ko on 6.1 and 6.12, soft-dirty, KVM.
VMTESTS := test_kmod_vm test_vm test_kvm_vm test_probes_vm

vmcheck: deps-check user
	@$(MAKE) -C selftests --no-print-directory all
	@cd selftests && LMIG="$(CURDIR)/user/lmig" sh run.sh $(addprefix build/,$(VMTESTS))

# lmig.ko under KASAN, lockdep, DEBUG_VM: not in `make check` (the first
# build of the kernel takes long on a small machine).
vmcheck-debug: deps-debug user
	@sh selftests/vm/debug-host.sh

bench: deps-bench user
	@sh bench/run.sh
	@sh bench/tracker.sh | tee -a bench/results-latest.md
	@sh bench/holemap.sh | tee -a bench/results-latest.md
	@sh bench/probes.sh | tee -a bench/results-latest.md
	@sh bench/mapwatch.sh | tee -a bench/results-latest.md
	@sh bench/kmod.sh | tee -a bench/results-latest.md
	@sh bench/throttle.sh | tee -a bench/results-latest.md
	@sh bench/live.sh | tee -a bench/results-latest.md
	@sh bench/qemu.sh | tee -a bench/results-latest.md
	@sh bench/estimate.sh | tee -a bench/results-latest.md
	@sh bench/converge.sh | tee -a bench/results-latest.md
	@sh bench/converge_kvm.sh | tee -a bench/results-latest.md
	@sh bench/tls.sh | tee -a bench/results-latest.md

reliability: user
	@python3 reliability/campaign.py

fuzz: deps-check
	@$(MAKE) -C fuzz --no-print-directory fuzz

clean:
	@$(MAKE) -C user --no-print-directory clean
	@$(MAKE) -C fuzz --no-print-directory clean
	@$(MAKE) -C bpf --no-print-directory clean
	@$(MAKE) -C selftests --no-print-directory clean

.PHONY: all user demo check vmcheck vmcheck-debug bench reliability fuzz clean
