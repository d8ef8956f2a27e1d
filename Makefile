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

# The builds use every CPU (a clean tree's selftests took 55 s of CPU);
# the tests then run as selftests/run.sh orders them.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

check: deps-check
	@$(MAKE) -j$(JOBS) --no-print-directory user
	@$(MAKE) -C selftests -j$(JOBS) --no-print-directory all
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
	@sh bench/tracker_kvm.sh | tee -a bench/results-latest.md
	@sh bench/throttle.sh | tee -a bench/results-latest.md
	@sh bench/live.sh | tee -a bench/results-latest.md
	@sh bench/qemu.sh | tee -a bench/results-latest.md
	@sh bench/resume.sh | tee -a bench/results-latest.md
	@sh bench/estimate.sh | tee -a bench/results-latest.md
	@sh bench/converge.sh | tee -a bench/results-latest.md
	@sh bench/converge_kvm.sh | tee -a bench/results-latest.md
	@sh bench/tls.sh | tee -a bench/results-latest.md
	@sh bench/postcopy.sh | tee -a bench/results-latest.md
	@sh bench/plot.sh

# Man pages: Documentation/man/*.scd (scdoc) into $(MAN_BUILD)/*.8.
MAN_BUILD ?= build/man
MAN_PAGES := $(patsubst Documentation/man/%.scd,$(MAN_BUILD)/%,$(wildcard Documentation/man/*.scd))

man: $(MAN_PAGES)

$(MAN_BUILD)/%: Documentation/man/%.scd
	@command -v scdoc >/dev/null 2>&1 || { echo "make man: scdoc is missing (apt-get install scdoc, or as root: sh $(DEPS) check)" >&2; exit 1; }
	@mkdir -p $(@D)
	@printf '  %-7s %s\n' SCDOC $@
	@scdoc < $< > $@.tmp && mv $@.tmp $@

.PHONY: man

reliability: user
	@python3 reliability/campaign.py

fuzz: deps-check
	@$(MAKE) -C fuzz --no-print-directory fuzz

# ---- install, uninstall, deb (Documentation/install.md) ----------------
#   make install    lmig, its man pages, completion, udev rule, documentation
#                   and the module's DKMS source under PREFIX
#   make uninstall  removes what install put there
#   make deb        the Debian packages lmig and lmig-dkms into build/deb/
#
# The usual variables: PREFIX (default /usr/local), DESTDIR, and the
# directories below derived from PREFIX unless given.  lmig is a root
# tool, hence sbin.  udev reads its rules only from its own directory
# (pkg-config's udevdir), never from under /usr/local.  The module's
# source goes where DKMS finds it when PREFIX is /usr (/usr/src); the
# release is VERSION, as for `lmig version` and MODULE_VERSION.
VERSION      := $(shell cat VERSION)
PREFIX       ?= /usr/local
SBINDIR      ?= $(PREFIX)/sbin
DATADIR      ?= $(PREFIX)/share
MANDIR       ?= $(DATADIR)/man
DOCDIR       ?= $(DATADIR)/doc/lmig
BASHCOMPDIR  ?= $(DATADIR)/bash-completion/completions
DKMSSRCDIR   ?= $(PREFIX)/src/lmig-$(VERSION)
UDEVDIR      ?= $(or $(shell pkg-config --variable=udevdir udev 2>/dev/null),/lib/udev)
UDEVRULESDIR ?= $(UDEVDIR)/rules.d
INSTALL      ?= install

# Man pages are built from Documentation/man/*.8.scd by `make man` when
# their sources are in the tree; whatever build/man holds is installed.
MAN_SRCS  := $(wildcard Documentation/man/*.8.scd)
KMOD_SRCS := $(filter-out %.mod.c,$(wildcard kmod/*.c)) $(wildcard kmod/*.h) kmod/Makefile
DOCS      := README.md $(wildcard Documentation/*.md)

install: user $(if $(MAN_SRCS),man)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UDEVRULESDIR) \
		$(DESTDIR)$(DKMSSRCDIR)/kmod $(DESTDIR)$(DKMSSRCDIR)/include/uapi/linux
	$(INSTALL) -m 0755 user/lmig $(DESTDIR)$(SBINDIR)/lmig
	@set -e; for f in build/man/*.8; do [ -e "$$f" ] || continue; \
		echo "$(INSTALL) -m 0644 $$f $(DESTDIR)$(MANDIR)/man8/"; \
		$(INSTALL) -D -m 0644 "$$f" "$(DESTDIR)$(MANDIR)/man8/$${f##*/}"; done
	@set -e; if [ -e completion/lmig ]; then \
		echo "$(INSTALL) -m 0644 completion/lmig $(DESTDIR)$(BASHCOMPDIR)/lmig"; \
		$(INSTALL) -D -m 0644 completion/lmig $(DESTDIR)$(BASHCOMPDIR)/lmig; fi
	$(INSTALL) -m 0644 udev/60-lmig.rules $(DESTDIR)$(UDEVRULESDIR)/60-lmig.rules
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 $(KMOD_SRCS) $(DESTDIR)$(DKMSSRCDIR)/kmod/
	$(INSTALL) -m 0644 include/uapi/linux/lmig.h $(DESTDIR)$(DKMSSRCDIR)/include/uapi/linux/
	$(INSTALL) -m 0644 VERSION $(DESTDIR)$(DKMSSRCDIR)/VERSION
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf >$(DESTDIR)$(DKMSSRCDIR)/dkms.conf
	chmod 0644 $(DESTDIR)$(DKMSSRCDIR)/dkms.conf

# Only what install put there; the directories that are lmig's own go too.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/lmig $(DESTDIR)$(BASHCOMPDIR)/lmig \
		$(DESTDIR)$(UDEVRULESDIR)/60-lmig.rules
	@set -e; for f in build/man/*.8 $(MAN_SRCS:%.scd=%); do \
		f="$(DESTDIR)$(MANDIR)/man8/$${f##*/}"; \
		if [ -e "$$f" ]; then echo "rm -f $$f"; rm -f "$$f"; fi; done
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS))) \
		$(addprefix $(DESTDIR)$(DKMSSRCDIR)/kmod/,$(notdir $(KMOD_SRCS))) \
		$(DESTDIR)$(DKMSSRCDIR)/include/uapi/linux/lmig.h \
		$(DESTDIR)$(DKMSSRCDIR)/VERSION $(DESTDIR)$(DKMSSRCDIR)/dkms.conf
	rmdir --ignore-fail-on-non-empty $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DKMSSRCDIR)/kmod \
		$(DESTDIR)$(DKMSSRCDIR)/include/uapi/linux $(DESTDIR)$(DKMSSRCDIR)/include/uapi \
		$(DESTDIR)$(DKMSSRCDIR)/include $(DESTDIR)$(DKMSSRCDIR) 2>/dev/null || true

# Built from a copy of the tree in a temporary directory (dpkg-buildpackage
# writes beside the source); the packages land in build/deb.
deb:
	@sh scripts/build-deb.sh build/deb

.PHONY: install uninstall deb
# ---- end of install, uninstall, deb --------------------------------------

clean:
	@$(MAKE) -C user --no-print-directory clean
	@$(MAKE) -C fuzz --no-print-directory clean
	@$(MAKE) -C bpf --no-print-directory clean
	@$(MAKE) -C selftests --no-print-directory clean

.PHONY: all user demo check vmcheck vmcheck-debug bench reliability fuzz clean
