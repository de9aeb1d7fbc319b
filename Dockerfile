# ivr-pin on a distroless glibc base, run as a non-root user.
#   docker build -t ivr-pin . && docker run --network host --ulimit core=0 --env-file ivr-pin.env \
#     -v ivr-pin-state:/var/lib/ivr-pin -v /run/ivr-pin-secrets:/run/secrets:ro ivr-pin
# Metrics and health listen on loopback (IVRPIN_METRICS_ADDR=127.0.0.1:9464) unless the
# environment says otherwise: with --network host that is the host's loopback.
#
# Built with cgo: the zone PIN key lives in an HSM reached through its vendor's PKCS#11
# library, which the process loads (dlopen) at start-up; that needs glibc, hence the
# cc base (glibc and libstdc++, which most vendors' libraries link) and a builder on the
# same Debian release. Mount the vendor's library and its configuration into the
# container and name it in IVRPIN_PKCS11_MODULE. A CGO_ENABLED=0 build works too, for a
# lab on a software key: it refuses IVRPIN_NI_ZPK_LABEL, naming the reason.
# serve turns off core dumps (RLIMIT_CORE 0) and makes itself non-dumpable at start;
# --ulimit core=0 (compose: ulimits) says the same to the container.
FROM golang:1.26-bookworm AS build
# What `ivr-pin --version` and ivrpin_build_info say: the build context has no
# .git, so the version and revision come as build arguments
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) .
ARG VERSION=unversioned
ARG REVISION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath \
    -ldflags="-s -w -X github.com/ivr-pin/ivr-pin/internal/buildinfo.version=${VERSION} -X github.com/ivr-pin/ivr-pin/internal/buildinfo.revision=${REVISION}" \
    -o /out/ivr-pin ./cmd/ivr-pin
# The state directory, owned by distroless's nonroot user (65532), so the
# attempt store and the audit file can be written on a fresh volume.
RUN mkdir -p /out/state && chown 65532:65532 /out/state && chmod 0700 /out/state

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ivr-pin /usr/local/bin/ivr-pin
COPY --from=build --chown=65532:65532 /out/state /var/lib/ivr-pin
USER 65532:65532
# The embedded attempt store (limits and first-setup marks) and the audit file.
VOLUME /var/lib/ivr-pin
ENV IVRPIN_LIMIT_STORE=/var/lib/ivr-pin/attempts.db \
    IVRPIN_AUDIT_FILE=/var/lib/ivr-pin/audit.jsonl
# Outbound ARI (IVRPIN_ARI_LISTEN=:8090), when Asterisk 22 dials the line.
EXPOSE 8090
# distroless has no shell or curl: the binary asks its own /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["/usr/local/bin/ivr-pin", "ready"]
ENTRYPOINT ["/usr/local/bin/ivr-pin"]
CMD ["serve"]
