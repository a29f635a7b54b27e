# A stand-in for the public minio/minio image, for CI's compose tests: moto's S3 server
# (pure Python, installs from pip with no binary to fetch; no MinIO, Ceph or Garage installs
# from a package registry here). It keeps every object in memory: pause it, do not restart
# it. It answers on MinIO's port 9000, takes MinIO's `server …` command and has an
# `mc ready local` health command; it accepts any credentials.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN python3 -m venv /opt/moto \
    && /opt/moto/bin/pip install --no-cache-dir --disable-pip-version-check 'moto[server]>=5,<6'
COPY s3-standin.sh /usr/local/bin/s3-standin
COPY s3-standin-mc.sh /usr/local/bin/mc
RUN useradd --system --uid 10002 --no-create-home s3
USER s3
EXPOSE 9000
ENTRYPOINT ["s3-standin"]
CMD ["server", "/data"]
