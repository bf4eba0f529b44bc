# Stand-in for redis:7-alpine, built by scripts/compose-check.sh where Docker Hub cannot be
# reached: Debian bookworm's redis-server 7.0 with an entrypoint that behaves like the official one.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
EXPOSE 6379
LABEL org.adgm-serve.standin="Debian bookworm's redis-server 7.0, run as the user redis, protected mode off"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
