# Stand-in for postgres:16-alpine, built by scripts/compose-check.sh where Docker Hub cannot be
# reached: Debian bookworm's PostgreSQL (15: bookworm has no 16) with an entrypoint that honours
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB as the official one does.
ARG BASE
FROM ${BASE}
ENV LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 "$PGDATA" \
 && install -d -o postgres -g postgres -m 2775 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
LABEL org.adgm-serve.standin="Debian bookworm's PostgreSQL 15 (not 16), initialised from POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
