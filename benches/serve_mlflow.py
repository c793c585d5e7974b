"""The scikit-learn side of benches/serve.rs: the same iris CSV, a Pipeline of
RobustScaler and DecisionTreeClassifier, saved twice as MLflow models for
`mlflow models serve` -- once answering predict() (MLflow's default, labels
only) and once predict_proba() (probabilities, closer to what gust answers).

    python serve_mlflow.py IRIS_CSV OUT_DIR

Prints one JSON line: the model directories and the library versions.
"""

import json
import sys

import mlflow
import pandas as pd
import sklearn
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler
from sklearn.tree import DecisionTreeClassifier

FEATURES = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"]


def main():
    csv, out = sys.argv[1], sys.argv[2]
    df = pd.read_csv(csv, sep=";")
    x, y = df[FEATURES].astype("float64"), df["Species"]
    pipe = Pipeline(
        [("scale", RobustScaler()), ("tree", DecisionTreeClassifier(random_state=0))]
    ).fit(x, y)
    paths = {}
    for fn in ("predict", "predict_proba"):
        path = f"{out}/{fn}"
        output = getattr(pipe, fn)(x)
        mlflow.sklearn.save_model(
            pipe,
            path,
            signature=infer_signature(x, output),
            pyfunc_predict_fn=fn,
            # MLflow 3 saves with skops, which asks which types to trust: the
            # tree's node storage, made here.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
        paths[fn] = path
    print(
        json.dumps(
            {
                "models": paths,
                "train_accuracy": float((pipe.predict(x) == y).mean()),
                "mlflow": mlflow.__version__,
                "sklearn": sklearn.__version__,
                "pandas": pd.__version__,
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
