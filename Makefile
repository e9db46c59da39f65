# stevedore — build, test, run, install. See README.md.
PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
# where systemd looks for units (pkg-config systemd), else Debian's
UNITDIR    ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
# the node the launcher runs: an absolute path, found at install time
NODE       ?= $(shell command -v node 2>/dev/null)
VERSION    := $(shell node -p 'require("./package.json").version')

BIN        := node_modules/.bin
SOURCES    := $(shell find src -name '*.ts')
TESTS      ?= $(shell find test -name '*.test.ts' | sort)
BENCHES    ?= $(shell find test/bench -name '*.bench.ts' | sort)

.PHONY: all build typecheck test bench run install uninstall clean

all: build

# Dev dependencies, reinstalled when the lockfile is newer than the last install.
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

typecheck: node_modules/.installed
	$(BIN)/tsc -p .

dist/stevedore.js: node_modules/.installed $(SOURCES) package.json
	$(BIN)/tsc -p .
	$(BIN)/esbuild src/main.ts --bundle --platform=node --target=node20 --format=cjs \
	  --outfile=dist/stevedore.js --sourcemap --legal-comments=none \
	  --define:STEVEDORE_VERSION='"$(VERSION)"' --banner:js='#!/usr/bin/env node' --log-level=warning
	@echo '{"type":"commonjs"}' > dist/package.json
	@chmod 755 dist/stevedore.js

build: dist/stevedore.js

test: build
	$(BIN)/c8 --reporter=text-summary --exclude='test/**' --exclude='node_modules/**' \
	  node --import tsx --test --test-reporter=spec $(TESTS)

bench: build
	@for b in $(BENCHES); do echo "== $$b"; node --import tsx $$b || exit 1; done

run: build
	@sh packaging/dev-config.sh
	node dist/stevedore.js daemon --config .run/stevedore.conf

install: build
	@case '$(NODE)' in /*) [ -x '$(NODE)' ] && exit 0;; esac; \
	  echo "stevedore: node not found (NODE='$(NODE)'): install Node.js >= 20 or pass NODE=/absolute/path/to/node" >&2; exit 1
	install -d $(DESTDIR)$(PREFIX)/lib/stevedore $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/stevedore
	install -m 755 dist/stevedore.js $(DESTDIR)$(PREFIX)/lib/stevedore/stevedore.js
	install -m 644 dist/stevedore.js.map $(DESTDIR)$(PREFIX)/lib/stevedore/stevedore.js.map
	install -m 644 dist/package.json $(DESTDIR)$(PREFIX)/lib/stevedore/package.json
	sed -e 's|@NODE@|$(NODE)|g' -e 's|@LIBDIR@|$(PREFIX)/lib/stevedore|g' packaging/stevedore.sh.in > $(DESTDIR)$(PREFIX)/bin/stevedore
	chmod 755 $(DESTDIR)$(PREFIX)/bin/stevedore
	install -m 644 man/stevedore.8 $(DESTDIR)$(PREFIX)/share/man/man8/stevedore.8
	install -m 644 man/stevedore.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/stevedore.conf.5
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions && node dist/stevedore.js completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stevedore
	sed 's|@BINDIR@|$(PREFIX)/bin|g' packaging/stevedore.service > $(DESTDIR)$(UNITDIR)/stevedore.service
	chmod 644 $(DESTDIR)$(UNITDIR)/stevedore.service
	@# never overwrite a user's config
	[ -e $(DESTDIR)$(SYSCONFDIR)/stevedore/stevedore.conf ] || \
	  install -m 644 packaging/stevedore.conf.example $(DESTDIR)$(SYSCONFDIR)/stevedore/stevedore.conf

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/stevedore $(DESTDIR)$(PREFIX)/share/man/man8/stevedore.8 \
	  $(DESTDIR)$(PREFIX)/share/man/man5/stevedore.conf.5 $(DESTDIR)$(UNITDIR)/stevedore.service
	rm -f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stevedore
	rm -rf $(DESTDIR)$(PREFIX)/lib/stevedore
	@echo "kept $(SYSCONFDIR)/stevedore/stevedore.conf and the state dir /var/lib/stevedore"

clean:
	rm -rf dist coverage .run
