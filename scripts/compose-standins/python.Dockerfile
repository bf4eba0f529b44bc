# Stand-in for python:3.11-slim, built by scripts/compose-check.sh where Docker Hub cannot be
# reached: Debian bookworm's Python 3.11 in a virtual environment at /usr/local, so that `python`
# and `pip` are on PATH in /usr/local/bin and `pip install` installs there, as in the official image.
ARG BASE
FROM ${BASE}
ENV LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /usr/local \
 && /usr/local/bin/python -m pip --version
LABEL org.adgm-serve.standin="Debian bookworm's python3.11 in a virtual environment at /usr/local (python, pip on PATH)"
CMD ["python3"]
