# A stand-in for the public rabbitmq:*-management image, from Debian's rabbitmq-server:
# the same ports, data folder, health command, RABBITMQ_DEFAULT_USER/PASS variables and a
# docker-entrypoint.sh on the PATH (deploy/compose.cluster.yml's nodes start through it).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && mkdir -p /etc/rabbitmq/conf.d \
    && printf 'loopback_users.guest = false\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\n' \
       > /etc/rabbitmq/conf.d/10-defaults.conf \
    && printf '#!/bin/sh\nexec "$@"\n' > /usr/local/bin/docker-entrypoint.sh \
    && chmod 755 /usr/local/bin/docker-entrypoint.sh \
    && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq
ENV HOME=/var/lib/rabbitmq RABBITMQ_LOGS=- RABBITMQ_CONFIG_FILES=/etc/rabbitmq/conf.d
USER rabbitmq
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
