# Release builds: static, reproducible (same source, same Go => same bytes).
#   make release   -> dist/ncspv-linux-{amd64,arm64}, dist/ncspv.1, dist/SHA256SUMS
#   make deb       -> the above, then dist/ncspv_VERSION_{amd64,arm64}.deb
#   make check-reproducible -> builds twice in two directories and compares

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
# The commit time dates the man page, so it too is reproducible.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)
ARCHS := amd64 arm64

.PHONY: release deb check-reproducible clean

release:
	rm -rf dist && mkdir -p dist
	for arch in $(ARCHS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -buildvcs=false \
			-ldflags "$(LDFLAGS)" -o dist/ncspv-linux-$$arch ./cmd/ncspv || exit 1; \
	done
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) go run -trimpath ./cmd/ncspv manpage > dist/ncspv.1
	cd dist && sha256sum ncspv-linux-* ncspv.1 > SHA256SUMS
	@ls -l dist

# Debian packages of the release (dist/ncspv_VERSION_ARCH.deb), as
# reproducible as the release itself.
deb: release
	VERSION=$(VERSION) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) contrib/deb/build

check-reproducible:
	.ci/reproducible

clean:
	rm -rf dist
