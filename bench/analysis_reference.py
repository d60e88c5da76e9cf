"""The measurements of analysis/ written the obvious way, with numpy and
scikit-learn, for the parity and speed benchmarks (bench/analysis_*.sh).

Nothing here is used by sslsweep itself: it is the peer we compare against.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.preprocessing import StandardScaler


def ncc_accuracy(train, train_labels, queries, query_labels):
    """scikit-learn's NearestCentroid, fitted on the training rows."""
    model = NearestCentroid().fit(train, train_labels)
    return float((model.predict(queries) == query_labels).mean())


def knn_accuracy_numpy(train, train_labels, queries, query_labels, k=20,
                       temperature=0.07, chunk=1024):
    """Weighted cosine kNN: the k most similar training rows vote with
    weight exp(sim / T); ties go to the lowest class."""
    classes = int(max(train_labels.max(), query_labels.max())) + 1
    train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    correct = 0
    for begin in range(0, len(queries), chunk):
        sims = queries[begin:begin + chunk] @ train.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        votes = np.zeros((len(top), classes))
        np.add.at(votes, (np.arange(len(top))[:, None], train_labels[top]),
                  np.exp(top_sims / temperature))
        correct += int((votes.argmax(1) == query_labels[begin:begin + chunk]).sum())
    return correct / len(queries)


def knn_accuracy_sklearn(train, train_labels, queries, query_labels, k=20,
                         temperature=0.07):
    """The same vote with scikit-learn's KNeighborsClassifier (brute force,
    cosine distance d = 1 - sim)."""
    model = KNeighborsClassifier(
        n_neighbors=k, metric="cosine", algorithm="brute",
        weights=lambda d: np.exp((1.0 - d) / temperature))
    model.fit(train, train_labels)
    return float((model.predict(queries) == query_labels).mean())


def logistic_accuracy(train, train_labels, queries, query_labels, max_iter=100):
    """LogisticRegression (lbfgs, C=1) on standardised features."""
    scaler = StandardScaler().fit(train)
    model = LogisticRegression(max_iter=max_iter)
    model.fit(scaler.transform(train), train_labels)
    return float((model.predict(scaler.transform(queries)) == query_labels).mean())


def class_means(features, labels):
    classes = np.unique(labels)
    return classes, np.stack([features[labels == c].mean(0) for c in classes])


def cdnv(features, labels):
    """Mean over class pairs of (Var_i + Var_j) / (2 ||mu_i - mu_j||^2)."""
    features = features.astype(np.float64)
    classes, means = class_means(features, labels)
    var = np.array([((features[labels == c] - m) ** 2).sum(1).mean()
                    for c, m in zip(classes, means)])
    values = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            values.append((var[i] + var[j]) / (2 * ((means[i] - means[j]) ** 2).sum()))
    return float(np.mean(values))


def nc1(features, labels):
    """Tr(Sigma_W Sigma_B^+) / C, with D x D matrices (Papyan et al.)."""
    features = features.astype(np.float64)
    classes, means = class_means(features, labels)
    centred = features - means[np.searchsorted(classes, labels)]
    sigma_w = centred.T @ centred / len(features)
    between = means - features.mean(0)
    sigma_b = between.T @ between / len(classes)
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10, hermitian=True))
                 / len(classes))
