# ivr-pin: one static binary on a distroless base, run as a non-root user.
#   docker build -t ivr-pin . && docker run --network host --env-file ivr-pin.env -v ivr-pin-state:/var/lib/ivr-pin ivr-pin
# Metrics and health listen on loopback (IVRPIN_METRICS_ADDR=127.0.0.1:9464) unless the
# environment says otherwise: with --network host that is the host's loopback.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ivr-pin ./cmd/ivr-pin
# The state directory, owned by distroless's nonroot user (65532), so the
# attempt store and the audit file can be written on a fresh volume.
RUN mkdir -p /out/state && chown 65532:65532 /out/state && chmod 0700 /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ivr-pin /usr/local/bin/ivr-pin
COPY --from=build --chown=65532:65532 /out/state /var/lib/ivr-pin
USER 65532:65532
# The embedded attempt store (limits and first-setup marks) and the audit file.
VOLUME /var/lib/ivr-pin
ENV IVRPIN_LIMIT_STORE=/var/lib/ivr-pin/attempts.db \
    IVRPIN_AUDIT_FILE=/var/lib/ivr-pin/audit.jsonl
# Outbound ARI (IVRPIN_ARI_LISTEN=:8090), when Asterisk 22 dials the line.
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/ivr-pin"]
CMD ["serve"]
