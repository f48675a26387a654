# cmd/consumer: the relays of every configured store, and the handler
# groups (here -tap ones). docker compose runs replicas of it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /consumer ./cmd/consumer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /consumer /consumer
COPY deploy/switchyard.yaml /etc/switchyard/switchyard.yaml
ENTRYPOINT ["/consumer"]
