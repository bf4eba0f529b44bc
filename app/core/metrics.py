"""Prometheus metrics: request latency by route, jobs by state and training throughput."""

import time

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from app.models import Job, JobProgress

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


class JobCollector:
    """Computed from the job store at scrape time, so every API process reports the same truth."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def collect(self):
        with self.sessions() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            running = session.scalars(select(Job.id).where(Job.status == "running")).all()
            throughput = 0.0
            for job_id in running:
                latest = session.scalar(
                    select(JobProgress.examples_per_second)
                    .where(JobProgress.job_id == job_id)
                    .order_by(JobProgress.seq.desc())
                    .limit(1)
                )
                throughput += latest or 0.0
        jobs = GaugeMetricFamily("adgm_jobs", "Training jobs by state", labels=["state"])
        for state in JOB_STATES:
            jobs.add_metric([state], counts.get(state, 0))
        yield jobs
        yield GaugeMetricFamily(
            "adgm_training_examples_per_second",
            "Training throughput of the running jobs (sum of their last epoch's examples/s)",
            value=throughput,
        )


class Metrics:
    def __init__(self, sessions: sessionmaker):
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "adgm_request_seconds", "HTTP request latency by route",
            labelnames=("method", "route", "status"), registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.registry.register(JobCollector(sessions))


class LatencyMiddleware:
    """Times every HTTP request and labels it with its route template (never the raw path)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_with_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            runtime = getattr(scope["app"].state, "runtime", None)
            metrics = runtime.metrics if runtime is not None else None
            if metrics is not None:
                metrics.latency.labels(scope["method"], template, str(status["code"])).observe(
                    time.perf_counter() - start
                )
