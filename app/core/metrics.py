"""Prometheus metrics: request latency by route, jobs by state and training throughput."""

import time

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from store.status import JobStatus
from store.tables import Job, JobProgress


class JobCollector:
    """Computed from the job store at scrape time, so every API process reports the same truth."""

    def __init__(self, sessions: sessionmaker):
        self.sessions = sessions

    def collect(self):
        latest_reports = (  # the newest progress row of each running job
            select(func.max(JobProgress.seq))
            .join(Job, Job.id == JobProgress.job_id)
            .where(Job.status == JobStatus.RUNNING)
            .group_by(JobProgress.job_id)
        )
        with self.sessions() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            throughput = session.scalar(
                select(func.coalesce(func.sum(JobProgress.examples_per_second), 0.0))
                .where(JobProgress.seq.in_(latest_reports))
            )
        jobs = GaugeMetricFamily("adgm_jobs", "Training jobs by state", labels=["state"])
        for state in JobStatus:
            jobs.add_metric([state.value], counts.get(state, 0))
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
