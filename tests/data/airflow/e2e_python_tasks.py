

# ---------------------------------------------------------------------------
# Appended by tests/data/airflow/e2e.sh to the stub DAG that
# `<test binary> airflow stub-dag` generated for DAG af_e2e (GUST_TEST_PIPELINE=e2e):
# Python tasks of the same DAG, next to the generated gust tasks, which are
# used as they are (looked up by task id, not edited). The generated file binds
# the DAG to `af_e2e_dag` and imports `task` and `timedelta`.
# ---------------------------------------------------------------------------

with af_e2e_dag:

    @task(task_id="check")
    def check(ti=None):
        # XComs the gust tasks pushed through Airflow's Execution API.
        got = ti.xcom_pull(task_ids="extract")
        assert got == {"n": 21, "host": "db.internal", "try": 1}, got
        day = ti.xcom_pull(task_ids="extract", key="day")
        assert isinstance(day, str) and len(day) == 10, day
        t = ti.xcom_pull(task_ids="transform")
        assert t["n"] == 42, t
        print("gust-e2e check ok", got, t)

    @task(task_id="py_noop")
    def py_noop():
        return None

    @task(task_id="after_broken")
    def after_broken():
        return None

    # A leaf that runs whatever happened upstream (flaky fails on purpose),
    # so the checks before it are in the run; after_broken is the other leaf:
    # upstream_failed, it makes the run end failed, as a permanent failure must.
    @task(task_id="done", trigger_rule="all_done")
    def done():
        return None

    gust = {t: af_e2e_dag.get_task(t) for t in ("extract", "transform", "noop", "flaky", "broken")}
    c, p, a, d = check(), py_noop(), after_broken(), done()
    gust["transform"] >> c
    gust["broken"] >> a
    [c, gust["noop"], p, gust["flaky"]] >> d
