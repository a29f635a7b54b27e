# A stand-in for the public prom/prometheus image, from Debian's prometheus package: the same
# entrypoint (prometheus, flags as the command), user (nobody), data folder (/prometheus),
# console libraries folder and a wget for the health check, so compose runs either unchanged.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# policy-rc.d: the package's postinst must not start a server inside the build. Debian ships
# the console libraries as examples only: copied to where the official image has them.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/sbin/policy-rc.d \
    && mkdir -p /usr/share/prometheus/console_libraries /prometheus \
    && cp /usr/share/doc/prometheus/examples/console_libraries/prom.lib \
          /usr/share/doc/prometheus/examples/console_libraries/menu.lib \
          /usr/share/prometheus/console_libraries/ \
    && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", \
     "--web.console.libraries=/usr/share/prometheus/console_libraries", \
     "--web.console.templates=/usr/share/prometheus/consoles"]
