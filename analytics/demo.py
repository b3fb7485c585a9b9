"""Demo data for the analytics pages: a year of simulated product history (see simulation.py)."""

from analytics.simulation import GenerationSpec, generate
from analytics.store import store

DEMO_USERS = 25_000  # enough active users for the demo experiments to run on (experiments/demo.py)
DEMO_MONTHS = 12
DEMO_SEED = 2024


def seed(*, stdout) -> None:
    """Generate 25,000 users (about 2 M events) over the 12 months ending now, unless the store
    already has events; then the demo cohorts."""
    from analytics.alerts.demo import seed as seed_alerts
    from analytics.cohorts.demo import seed as seed_cohorts
    from analytics.dashboards.demo import seed as seed_dashboards

    db = store()
    if db.query("SELECT 1 AS found FROM events LIMIT 1"):
        stdout.write("analytics: the store already has events, demo data skipped")
        seed_cohorts(stdout=stdout)
        seed_dashboards(stdout=stdout)
        seed_alerts(stdout=stdout)
        return
    result = generate(
        GenerationSpec(users=DEMO_USERS, months=DEMO_MONTHS, seed=DEMO_SEED, id_prefix="demo-")
    )
    stdout.write(
        f"analytics: generated {result.events:,} events for {result.users:,} demo users "
        f"in {result.seconds:.1f} s"
    )
    seed_cohorts(stdout=stdout)
    seed_dashboards(stdout=stdout)
    seed_alerts(stdout=stdout)


def queue_background_work(*, stdout) -> None:
    """On a first start, queue one retrain of every model kind so the Models, At-risk and user
    insight pages fill in once the worker has trained them (a minute or so on demo data)."""
    from analytics.insights.models import ModelVersion, TrainingRun
    from analytics.insights.services import retrain_all

    if ModelVersion.objects.exists() or TrainingRun.objects.exists():
        return
    runs = retrain_all(trigger="first start (demo)")
    stdout.write(f"analytics: queued {len(runs)} model trainings for the worker")
