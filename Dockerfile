# paved's image: a static binary on a distroless, non-root runtime.
#
#   docker build -t paved .            (or: buildah bud -t paved .)
#
# Base images come in as ARGs so that a registry mirror, or local stand-ins
# (.ci/image.sh builds them where registries are unreachable), can replace
# them; pin both by digest in production. Every RUN is in exec form: the
# builder needs no shell, and the runtime has none.
ARG BUILDER_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY . .
ARG VERSION=dev
# Exec-form RUN expands no variables, but ENV does: the version reaches the
# linker through GOFLAGS.
ENV GOFLAGS="-trimpath -ldflags=-X=main.version=${VERSION}"
RUN ["go", "build", "-o", "/out/paved", "./cmd/paved"]

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="paved" \
      org.opencontainers.image.description="Backend of an Internal Developer Platform: portal actions to GitLab pipelines running Pulumi" \
      org.opencontainers.image.source="https://github.com/paved-idp/paved" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/paved /usr/local/bin/paved
# The shipped catalog and policy; mount another directory over them (or
# point actionsDir/policyDir elsewhere) to use your own.
COPY actions /etc/paved/actions
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/paved"]
CMD ["serve", "--config", "/etc/paved/paved.yaml"]
