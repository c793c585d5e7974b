

# ---------------------------------------------------------------------------
# Appended by benches/airflow_overhead.rs (through tests/data/airflow/e2e.sh) to
# the stub DAG that the bench binary generated for DAG af_bench: a Python
# @task doing the same nothing as the gust task `noop`, in the same DAG run.
# The generated file binds the DAG to `af_bench_dag` and imports `task`.
# ---------------------------------------------------------------------------

with af_bench_dag:

    @task(task_id="py_noop")
    def py_noop():
        return None

    py_noop()
