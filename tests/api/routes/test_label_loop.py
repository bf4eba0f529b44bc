"""The label-efficient loop through the API: uploads in every format built from real MNIST images,
bad zips refused leaving nothing, the label log, images, suggestions, and warm starts."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from adgm_core.data import load_mnist
from adgm_core.images import to_model_input
from adgm_core.acquisition import DEFAULT_STRATEGY
from adgm_core.warm_start import retrain
from app.services import ARCHITECTURE
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.tables import Job, TrainedModel
from worker.training import JobRunner

NAMES = ["eight", "five", "nine"]  # sorted, as ImageFolder orders classes


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return load_mnist(mnist_dir)


def png(image: np.ndarray, dark_on_light: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(255 - image if dark_on_light else image).save(buffer, "PNG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
                continue
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = 0o120777 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def picks(mnist, classes, per_class, offset=0, test=False):
    images, labels = (mnist[1] if test else mnist[0]).images, (mnist[1] if test else mnist[0]).labels
    return [(k, i) for k in range(classes) for i in np.flatnonzero(labels == k)[offset:offset + per_class]]


def preprocessed(images: np.ndarray) -> np.ndarray:
    """What /classify does to each picture, computed here image by image."""
    return np.stack([to_model_input(Image.fromarray(image), (28, 28)) for image in images])


def upload(client, content, filename="data.zip", **data):
    return client.post("/datasets", files={"file": (filename, content, "application/octet-stream")}, data=data)


def stored(settings) -> list[str]:
    return sorted(path.name for path in settings.artifacts.datasets_dir.iterdir())


def image_folder(mnist, names=NAMES, per_class=4, unlabelled=6, test_per_class=2, top="digits/"):
    entries, expected_images, expected_labels = {}, [], []
    for k, i in picks(mnist, len(names), per_class):
        entries[f"{top}{names[k]}/{i}.png"] = png(mnist[0].images[i], dark_on_light=k == 1)
        expected_images.append(mnist[0].images[i]), expected_labels.append(k)
    for i in range(50_000, 50_000 + unlabelled):
        entries[f"{top}unlabelled/{i}.png"] = png(mnist[0].images[i])
        expected_images.append(mnist[0].images[i]), expected_labels.append(-1)
    for k, i in picks(mnist, len(names), test_per_class, test=True):
        entries[f"{top}test/{names[k]}/{i}.png"] = png(mnist[1].images[i])
    entries[f"{top}.DS_Store"] = b"junk"
    entries["__MACOSX/._x"] = b"junk"
    return entries, np.stack(expected_images), np.array(expected_labels)


def rows_by_image(images: np.ndarray, received: np.ndarray) -> np.ndarray:
    """For each expected image, the index of the identical received one (zip order is not ours)."""
    keys = {row.tobytes(): index for index, row in enumerate(received)}
    return np.array([keys[row.tobytes()] for row in images])


def test_an_image_folder_zip_round_trips(make_settings, start_client, mnist):
    settings = make_settings()
    client = start_client(settings)
    entries, images, labels = image_folder(mnist)
    response = upload(client, zip_bytes(entries), name="three digits")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["class_names"] == NAMES and body["n_classes"] == 3 and body["image_shape"] == [28, 28]
    assert (body["n_images"], body["n_labelled"], body["n_test_images"], body["version"]) == (18, 12, 6, 1)
    assert [(c["label_name"], c["count"]) for c in body["label_counts"]] == [(n, 4) for n in NAMES]
    with np.load(settings.artifacts.dataset_path(body["id"])) as npz:
        order = rows_by_image(preprocessed(images), npz["images"])
        np.testing.assert_array_equal(npz["labels"][order], labels)
        assert np.abs(npz["images"][order].astype(int) - images).mean() < 2  # MNIST's own preprocessing, nearly
        assert sorted(npz["test_labels"].tolist()) == [0, 0, 1, 1, 2, 2]
    detail = client.get(f"/datasets/{body['id']}").json()
    assert detail["label_counts"] == body["label_counts"] and detail["class_names"] == NAMES


def test_a_labels_csv_zip_round_trips(make_settings, start_client, mnist):
    settings = make_settings()
    client = start_client(settings)
    chosen = picks(mnist, 3, 3)
    entries = {f"img/{i}.png": png(mnist[0].images[i]) for _, i in chosen}
    entries["img/u.png"] = png(mnist[0].images[59_999])
    manifest = "file_name,label\n" + "".join(f"img/{i}.png,{NAMES[k]}\n" for k, i in chosen) + "img/u.png,\n"
    entries["labels.csv"] = manifest.encode()
    body = upload(client, zip_bytes(entries)).json()
    assert body["class_names"] == sorted(NAMES) and body["n_images"] == 10 and body["n_labelled"] == 9
    images = np.stack([mnist[0].images[i] for _, i in chosen] + [mnist[0].images[59_999]])
    labels = [sorted(NAMES).index(NAMES[k]) for k, _ in chosen] + [-1]
    with np.load(settings.artifacts.dataset_path(body["id"])) as npz:
        np.testing.assert_array_equal(npz["images"], preprocessed(images))
        np.testing.assert_array_equal(npz["labels"], labels)


def test_a_keras_npz_round_trips_exactly(make_settings, start_client, mnist):
    settings = make_settings()
    client = start_client(settings)
    buffer = io.BytesIO()
    x, y = mnist[0].images[:300], mnist[0].labels[:300].astype(np.uint8)
    np.savez(buffer, x_train=x, y_train=y, x_test=mnist[1].images[:50], y_test=mnist[1].labels[:50])
    body = upload(client, buffer.getvalue(), filename="mnist.npz").json()
    assert body["class_names"] == [str(k) for k in range(10)] and body["n_test_images"] == 50
    assert body["n_labelled"] == 300
    with np.load(settings.artifacts.dataset_path(body["id"])) as npz:
        np.testing.assert_array_equal(npz["images"], x)
        np.testing.assert_array_equal(npz["labels"], y)
        np.testing.assert_array_equal(npz["test_images"], mnist[1].images[:50])
    job = client.post("/train", json={"dataset": body["id"], "labels_per_class": 2, "epochs": 1}).json()
    assert job["params"]["labels_per_class"] == 2 and "use_all_labels" not in job["params"]


def bad_zips(mnist):
    image = png(mnist[0].images[0])
    good = {"a/1.png": image, "b/2.png": image}
    bomb = {**good, "a/bomb.png": b"\0" * (3 << 20)}
    return {
        "traversal": ({**good, "../evil.png": image}, 422, "unsafe path"),
        "absolute": ({**good, "/etc/evil.png": image}, 422, "unsafe path"),
        "symlink": ({**good, "a/link.png": b"/etc/passwd"}, 422, "symbolic link"),
        "bomb": (bomb, 422, "zip bomb"),
        "not images": ({**good, "a/notes.txt": b"hello", "b/fake.png": b"GIF89a"}, 422, "2 file(s) are not readable"),
        "empty test class": ({**good, "test/a/": b""}, 422, "empty test class folder(s): test/a"),
        "one class": ({"a/1.png": image, "unlabelled/2.png": image}, 422, "at least 2 classes"),
        "no class folder": ({"x/1.png": image}, 422, "no class folders found"),
        "too many classes": ({f"c{k}/x.png": image for k in range(1001)}, 422, "1,001 classes"),
        "too many images": ({f"a/{k}.png": image for k in range(6)} | {"b/x.png": image}, 413, "more than the limit of 5"),
        "stray file": ({**good, "loose.png": image}, 422, "outside the layout"),
        "test class unknown": ({**good, "test/z/1.png": image}, 422, "test/ has class folders"),
    }


def test_every_bad_zip_is_refused_and_leaves_nothing(make_settings, start_client, mnist):
    settings = make_settings(max_dataset_images=5)
    client = start_client(settings)
    for case, (entries, status, message) in bad_zips(mnist).items():
        symlinks = ("a/link.png",) if case == "symlink" else ()
        response = upload(client, zip_bytes(entries, symlinks))
        assert response.status_code == status, (case, response.text)
        assert message in response.json()["detail"], (case, response.json())
        assert stored(settings) == [], case
    assert [d["id"] for d in client.get("/datasets").json()["datasets"]] == ["digits5k"]


def test_files_that_are_not_images_can_be_skipped_and_counted(client, mnist):
    image = png(mnist[0].images[0])
    content = zip_bytes({"a/1.png": image, "b/2.png": image, "a/notes.txt": b"hi", "b/x.jpg": b"\xff\xd8\xffjunk"})
    body = upload(client, content, skip_invalid="true").json()
    assert body["n_images"] == 2 and len(body["skipped"]) == 2
    assert any("notes.txt" in entry for entry in body["skipped"])


def test_files_that_are_not_images_outside_the_class_folders_are_skipped_and_listed(make_settings, start_client,
                                                                                    mnist):
    settings = make_settings()
    client = start_client(settings)
    entries, _images, _labels = image_folder(mnist, top="")
    notes = {"README.md": b"# Three digits\n", "meta.csv": b"file,source\n", "notes.json": b"{}",
             "docs/LICENSE.txt": b"CC0", "test/about.txt": b"held out"}
    response = upload(client, zip_bytes({**entries, **notes}))
    assert response.status_code == 201, response.text
    body = response.json()
    assert sorted(body["skipped"]) == sorted(f"{name} (not an image, outside the class folders)" for name in notes)
    assert body["class_names"] == NAMES and (body["n_images"], body["n_test_images"]) == (18, 6)


def test_a_labels_csv_keeps_its_meaning_beside_other_files(client, mnist):
    chosen = picks(mnist, 3, 2)
    entries = {f"img/{i}.png": png(mnist[0].images[i]) for _, i in chosen}
    entries["img/extra.png"] = png(mnist[0].images[59_998])
    entries["README.md"] = b"labels in labels.csv"
    entries["labels.csv"] = ("file_name,label\n" + "".join(f"img/{i}.png,{NAMES[k]}\n" for k, i in chosen)).encode()
    body = upload(client, zip_bytes(entries)).json()
    assert body["class_names"] == sorted(NAMES) and (body["n_images"], body["n_labelled"]) == (6, 6)
    assert sorted(body["skipped"]) == ["README.md (not named in labels.csv)", "img/extra.png (not named in labels.csv)"]


def test_an_unreadable_image_in_a_class_folder_is_named_unless_skipped(make_settings, start_client, mnist):
    settings = make_settings()
    client = start_client(settings)
    image = png(mnist[0].images[0])
    entries = {"a/1.png": image, "a/2.png": image, "b/3.png": image, "b/cut.png": image[:50],
               "b/blank.png": png(np.zeros((28, 28), np.uint8))}
    refused = upload(client, zip_bytes(entries))
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "2 file(s) are not readable images" in detail and "b/cut.png" in detail and "b/blank.png (" in detail
    assert "skip_invalid=true" in detail and stored(settings) == []
    body = upload(client, zip_bytes({**entries, "loose.png": image}), skip_invalid="true").json()
    assert body["n_images"] == 3 and [c["count"] for c in body["label_counts"]] == [2, 1]
    assert sorted(entry.split(" (")[0] for entry in body["skipped"]) == ["b/blank.png", "b/cut.png", "loose.png"]


def test_mixed_sizes_and_modes_come_to_one_grey_size(client, mnist):
    digit = mnist[0].images[7]
    big = Image.fromarray(255 - digit).resize((56, 56)).convert("RGB")
    entries = {"a/1.png": png(digit), "a/2.png": png(digit), "b/3.png": png(np.asarray(big.convert("L")))}
    buffer = io.BytesIO()
    big.convert("RGBA").save(buffer, "PNG")
    entries["b/4.png"] = buffer.getvalue()
    assert upload(client, zip_bytes(entries)).json()["image_shape"] == [28, 28]
    assert upload(client, zip_bytes(entries), size="16").json()["image_shape"] == [16, 16]
    assert upload(client, zip_bytes(entries), size="3x300").status_code == 422


@pytest.fixture
def labelled_set(make_settings, start_client, mnist, trained_state):
    """The API on the session's trained model (10 digit classes) and an upload of MNIST digits in
    folders 0..9: one labelled per class, 200 unlabelled."""
    settings = make_settings(trained_state)
    client = start_client(settings)
    entries = {f"{k}/{i}.png": png(mnist[0].images[i]) for k, i in picks(mnist, 10, 1)}
    entries.update({f"unlabelled/{i}.png": png(mnist[0].images[i]) for i in range(40_000, 40_200)})
    body = upload(client, zip_bytes(entries)).json()
    return client, settings, body


def test_labels_are_added_corrected_logged_and_versioned(labelled_set):
    client, _settings, dataset = labelled_set
    dataset_id = dataset["id"]
    response = client.post(f"/datasets/{dataset_id}/labels", params={"author": "ann"},
                           json=[{"index": 100, "label": 3}, {"index": 101, "label": "4"}])
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2 and response.json()["added"] == 2
    corrected = client.post(f"/datasets/{dataset_id}/labels", json=[{"index": 100, "label": 5},
                                                                    {"index": 101, "label": None}]).json()
    assert corrected["version"] == 3
    counts = {c["label"]: c["count"] for c in client.get(f"/datasets/{dataset_id}").json()["label_counts"]}
    assert counts[5] == 2 and counts[3] == 1 and counts[4] == 1 and sum(counts.values()) == 11
    log = client.get(f"/datasets/{dataset_id}/labels", params={"limit": 4}).json()
    assert [(e["index"], e["label"], e["old_label"], e["author"]) for e in log["entries"]] == [
        (101, None, 4, "api"), (100, 5, 3, "api"), (101, 4, None, "ann"), (100, 3, None, "ann")]
    job = client.post("/train", json={"dataset": dataset_id, "epochs": 1, "hidden": [32]}).json()
    assert job["dataset_version"] == 3 and job["params"]["use_all_labels"] is True
    for bad, status in [([{"index": 10**6, "label": 1}], 422), ([{"index": 1, "label": "eleven"}], 422),
                        ([{"index": 1, "label": 10}], 422), ([], 422), ([{"index": -1, "label": 1}], 422)]:
        assert client.post(f"/datasets/{dataset_id}/labels", json=bad).status_code == status, bad
    assert client.post(f"/datasets/{'f' * 32}/labels", json=[{"index": 1, "label": 1}]).status_code == 404
    assert client.get(f"/datasets/{dataset_id}").json()["version"] == 3


def test_images_are_served_as_png(labelled_set, mnist):
    client, settings, dataset = labelled_set
    response = client.get(f"/datasets/{dataset['id']}/images/0")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    with np.load(settings.artifacts.dataset_path(dataset["id"])) as npz:
        assert image.shape[0] >= 28 and (image[2:30, 2:30] == npz["images"][0]).all()
    assert client.get(f"/datasets/{dataset['id']}/images/{dataset['n_images']}").status_code == 422
    assert client.get(f"/datasets/{'f' * 32}/images/0").status_code == 404


def test_suggestions_come_from_the_unlabelled_pool_deterministically(labelled_set):
    client, _settings, dataset = labelled_set
    url = f"/datasets/{dataset['id']}/suggestions"
    first = client.get(url, params={"n": 10}).json()
    assert first["pool_size"] == 200 and first["strategy"] == DEFAULT_STRATEGY and len(first["suggestions"]) == 10
    assert first["model_id"] is not None  # representative picks, with the newest model's guesses
    for item in first["suggestions"]:  # the zip's order: 10 class folders' digits, then 200 unlabelled
        assert 10 <= item["index"] < 210
        assert item["image_url"] == f"/datasets/{dataset['id']}/images/{item['index']}"
        assert abs(sum(item["probabilities"]) - 1) < 1e-4 and item["label_name"] == str(item["label"])
    ranked = client.get(url, params={"n": 10, "strategy": "bald"}).json()["suggestions"]
    scores = [item["score"] for item in ranked]
    assert scores == sorted(scores, reverse=True)
    assert client.get(url, params={"n": 10}).json() == first
    diverse = client.get(url, params={"n": 10, "diverse": True}).json()["suggestions"]
    assert len({item["index"] for item in diverse}) == 10
    for strategy in ("entropy", "margin", "random", "cover"):
        assert client.get(url, params={"n": 5, "strategy": strategy}).status_code == 200
    assert client.get(url, params={"strategy": "cleverest"}).status_code == 422
    client.post(f"/datasets/{dataset['id']}/labels", json=[{"index": first["suggestions"][0]["index"], "label": 1}])
    again = client.get(url, params={"n": 10}).json()
    assert again["pool_size"] == 199 and first["suggestions"][0]["index"] not in {s["index"] for s in again["suggestions"]}


def test_the_page_offers_the_apis_default_strategy(client):
    page = client.get("/").text
    strategies = page[page.index('<select id="label-strategy">'):]
    strategies = strategies[:strategies.index("</select>")]
    assert f'<option value="{DEFAULT_STRATEGY}" selected>' in strategies and strategies.count(" selected") == 1


def test_a_data_set_without_labels_gets_representative_suggestions_without_a_model(client, mnist):
    entries = {f"{k}/": b"" for k in range(10)}  # the classes, none of whose images is labelled yet
    entries.update({f"unlabelled/{i}.png": png(mnist[0].images[i]) for i in range(300)})
    dataset = upload(client, zip_bytes(entries)).json()
    assert (dataset["n_images"], dataset["n_labelled"], dataset["version"]) == (300, 0, 0)
    assert [c["count"] for c in dataset["label_counts"]] == [0] * 10
    url = f"/datasets/{dataset['id']}/suggestions"
    first = client.get(url, params={"n": 10}).json()  # this server has no model at all
    assert (first["strategy"], first["model_id"], first["pool_size"]) == ("representative", None, 300)
    indices = [item["index"] for item in first["suggestions"]]
    assert len(set(indices)) == 10 and all(0 <= index < 300 for index in indices)
    scores = [item["score"] for item in first["suggestions"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    assert all(item["label"] is None and item["probabilities"] is None for item in first["suggestions"])
    assert client.get(url, params={"n": 10}).json() == first
    assert client.get(f"/datasets/{dataset['id']}/images/{indices[0]}").status_code == 200

    refused = client.post("/train", json={"dataset": dataset["id"], "epochs": 1})
    assert refused.status_code == 422 and "label at least one image of every class" in refused.json()["detail"]
    labelled = [{"index": index, "label": int(mnist[0].labels[index])} for index in indices[:3]]
    assert client.post(f"/datasets/{dataset['id']}/labels", json=labelled).status_code == 200
    again = client.get(url, params={"n": 10}).json()  # fewer than one label per class: still no model needed
    assert again["strategy"] == "representative" and again["pool_size"] == 297
    assert not {item["index"] for item in again["suggestions"]} & set(indices[:3])
    assert client.get(url, params={"strategy": "bald"}).status_code == 503


def test_suggestions_need_a_model_that_fits_the_data_set(labelled_set, mnist):
    client, _settings, _dataset = labelled_set
    entries, _, _ = image_folder(mnist)
    other = upload(client, zip_bytes(entries)).json()
    response = client.get(f"/datasets/{other['id']}/suggestions", params={"strategy": "cover"})
    assert response.status_code == 409 and "3 classes" in response.json()["detail"]
    representative = client.get(f"/datasets/{other['id']}/suggestions")  # the default needs no model: no guesses
    assert representative.status_code == 200 and representative.json()["model_id"] is None
    assert all(item["probabilities"] is None for item in representative.json()["suggestions"])


def test_a_warm_start_takes_the_model_and_resumes_from_it(labelled_set, trained_state):
    client, settings, dataset = labelled_set
    model_id = trained_state.model_id
    response = client.post("/train", json={"dataset": "digits5k", "init_model": model_id})
    assert response.status_code == 202, response.text
    params = response.json()["params"]
    cold = client.post("/train", json={"dataset": "digits5k"}).json()["params"]  # the same request, cold
    rule = retrain(cold["epochs"], 4000 // cold["batch_size"])  # digits5k: 4,000 training images
    assert params["init_model"] == model_id and (params["epochs"], params["init_weights"]) == (rule.epochs, False)
    assert {name: value for name, value in params.items() if name not in ARCHITECTURE + ("init_model", "init_weights")
            } == {name: value for name, value in cold.items() if name not in ARCHITECTURE}  # quick's retrain: cold
    assert (params["hidden"], params["z_dim"], params["a_dim"], params["skip"]) == ([32], 4, 4, False)
    mismatched = client.post("/train", json={"dataset": "digits5k", "init_model": model_id, "hidden": [64]})
    assert mismatched.status_code == 409 and "same architecture" in mismatched.json()["detail"]
    assert client.post("/train", json={"dataset": "digits5k", "init_model": "f" * 32}).status_code == 404

    # the worker's own code path: a 1-epoch warm job against the cold job the model came from
    warm = client.post("/train", json={"dataset": "digits5k", "init_model": model_id, "epochs": 1,
                                       "labels_per_class": 10, "seed": 0}).json()
    assert warm["params"]["init_weights"] is True  # epochs asked for: from the weights
    engine = make_engine(settings.database_url)
    store = JobStore(make_sessionmaker(engine))
    assert JobRunner(settings, store).run(warm["id"]) == "succeeded"
    with store.sessions() as session:
        warm_first = session.get(Job, warm["id"]).history[0].elbo
        cold_first = session.get(Job, trained_state.job_id).history[0].elbo
        new_model = session.get(TrainedModel, session.get(Job, warm["id"]).model_id)
    engine.dispose()
    assert warm_first > cold_first + 20, (warm_first, cold_first)
    assert new_model is not None and new_model.config["hidden"] == [32]
