# One Switchyard program per image: PROGRAM is its package (default
# cmd/consumer: relays and the operator's tools, no handlers; docker
# compose builds examples/multitenant, whose handlers it runs). The image's
# entrypoint is the program, so any subcommand runs in it:
# docker compose run --rm consumer status.
FROM golang:1.26 AS build
ARG PROGRAM=./cmd/consumer
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /app ${PROGRAM}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /app /app
COPY deploy/switchyard.yaml /etc/switchyard/switchyard.yaml
ENTRYPOINT ["/app"]
