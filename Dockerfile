# ivr-pin: one static binary on a distroless base, run as a non-root user.
#   docker build -t ivr-pin . && docker run --network host --env-file ivr-pin.env ivr-pin
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ivr-pin ./cmd/ivr-pin

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ivr-pin /usr/local/bin/ivr-pin
# The embedded attempt store and the audit file live on a volume.
VOLUME /var/lib/ivr-pin
ENV IVRPIN_LIMIT_STORE=/var/lib/ivr-pin/attempts.db \
    IVRPIN_AUDIT_FILE=/var/lib/ivr-pin/audit.jsonl \
    IVRPIN_METRICS_ADDR=0.0.0.0:9464
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/ivr-pin"]
CMD ["serve"]
