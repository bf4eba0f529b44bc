"""Drives a real Label Studio with label-studio-sdk, as a user would; run by the Label Studio
virtual environment's Python (its pins are not ours), one step per call, JSON on stdout.

    driver.py URL TOKEN setup BACKEND_URL USER PASSWORD WEBHOOK_TOKEN IMAGES_DIR  → project, backend and task ids
    driver.py URL TOKEN auth BACKEND BACKEND_URL PROJECT USER PASSWORD  → the backend connection's basic auth changed
    driver.py URL TOKEN predict PROJECT                → each task's file, prediction and score
    driver.py URL TOKEN annotate PROJECT TASK=CHOICE…  → annotations made
    driver.py URL TOKEN relabel ANNOTATION CHOICE      → that annotation changed
    driver.py URL TOKEN delete ANNOTATION              → that annotation deleted
    driver.py URL TOKEN train BACKEND                  → Label Studio's training request sent
"""

import json
import sys
import time
from pathlib import Path

import requests
from label_studio_sdk import LabelStudio

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="digit" toName="image" choice="single">
    {choices}
  </Choices>
</View>""".format(choices="".join(f'<Choice value="{k}"/>' for k in range(10)))


def setup(ls: LabelStudio, url: str, token: str, backend_url: str, user: str, password: str, webhook_token: str,
          images_dir: str) -> dict:
    project = ls.projects.create(title="digits", label_config=CONFIG)
    files = sorted(Path(images_dir).glob("*.png"))
    # the SDK imports JSON tasks; image files go through the same import endpoint as multipart, one field each
    response = requests.post(f"{url}/api/projects/{project.id}/import", headers={"Authorization": f"Token {token}"},
                             files=[(f"file{i}", (path.name, path.read_bytes(), "image/png")) for i, path in enumerate(files)], timeout=60)
    response.raise_for_status()
    backend = ls.ml.create(project=project.id, url=backend_url, title="adgm-serve", is_interactive=False,
                           auth_method="BASIC_AUTH", basic_auth_user=user, basic_auth_pass=password)
    # Label Studio makes a webhook to BACKEND_URL/webhook without credentials: give it a token of its own
    for hook in ls.webhooks.list(project=str(project.id)):
        if hook.url.rstrip("/") == backend_url.rstrip("/") + "/webhook":
            ls.webhooks.update(hook.id, url=hook.url, headers={"Authorization": f"Bearer {webhook_token}"})
    tasks = list(ls.tasks.list(project=project.id))
    return {"project": project.id, "backend": backend.id, "tasks": [task.id for task in tasks],
            "backend_state": getattr(backend, "state", None)}


def predict(ls: LabelStudio, project: int) -> dict:
    ls.actions.create(id="retrieve_tasks_predictions", project=project, selected_items={"all": True, "excluded": []})
    deadline, found = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        found = {}
        for task in ls.tasks.list(project=project, fields="all"):
            predictions = ls.predictions.list(task=task.id)
            if predictions:
                found[task.id] = {"image": task.data["image"], "result": predictions[0].result,
                                  "score": predictions[0].score, "model_version": predictions[0].model_version}
        if found:
            break
        time.sleep(1)
    return {"predictions": found}


def annotate(ls: LabelStudio, project: int, pairs: list[str]) -> dict:
    made = []
    for pair in pairs:
        task_id, choice = pair.split("=")
        result = [{"from_name": "digit", "to_name": "image", "type": "choices", "value": {"choices": [choice]}}]
        annotation = ls.annotations.create(id=int(task_id), result=result)
        made.append({"task": int(task_id), "annotation": annotation.id})
    return {"annotations": made}


def main() -> None:
    url, token, step, *args = sys.argv[1:]
    ls = LabelStudio(base_url=url, api_key=token)
    if step == "setup":
        answer = setup(ls, url, token, *args)
    elif step == "predict":
        answer = predict(ls, int(args[0]))
    elif step == "annotate":
        answer = annotate(ls, int(args[0]), args[1:])
    elif step == "relabel":
        result = [{"from_name": "digit", "to_name": "image", "type": "choices", "value": {"choices": [args[1]]}}]
        ls.annotations.update(int(args[0]), result=result)
        answer = {"relabelled": int(args[0])}
    elif step == "delete":
        ls.annotations.delete(int(args[0]))
        answer = {"deleted": int(args[0])}
    elif step == "auth":
        # Label Studio 1.23 checks the connection again on an update (health, setup): it needs the URL and project
        ls.ml.update(int(args[0]), url=args[1], project=int(args[2]), auth_method="BASIC_AUTH", basic_auth_user=args[3],
                     basic_auth_pass=args[4])
        answer = {"auth": "changed"}
    elif step == "train":
        ls.ml.train(id=int(args[0]))
        answer = {"train": "sent"}
    else:
        raise SystemExit(f"unknown step {step}")
    print(json.dumps(answer, default=str))


if __name__ == "__main__":
    main()
