# A container image built from this repository:
#   docker build -t tokengate .
#   docker run -p 80:80 -p 443:443 -v tokengate-data:/data -v $PWD/Caddyfile:/etc/tokengate/Caddyfile tokengate
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /tokengate ./cmd/tokengate
RUN mkdir -p /state/data /state/config

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /tokengate /usr/bin/tokengate
# Writable by the image's nonroot user (65532), also as fresh named volumes.
COPY --from=build --chown=65532:65532 /state/data /data
COPY --from=build --chown=65532:65532 /state/config /config
# Caddy keeps certificates and tokengate its file store under XDG_DATA_HOME.
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
VOLUME ["/data"]
EXPOSE 80 443 2019
ENTRYPOINT ["/usr/bin/tokengate", "run", "--config", "/etc/tokengate/Caddyfile"]
