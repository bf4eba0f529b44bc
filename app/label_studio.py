"""Label Studio's ML backend protocol: reading a project's labelling config, fetching task images
from the configured Label Studio only, and shaping predictions as Label Studio stores them.

A prediction is one `choices` result naming the class, with `score` = the model's probability of
it: Label Studio's Community Edition orders its labelling queue by that score, lowest first, so
the images the model is least sure of are labelled first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import numpy as np

from adgm_core.images import ImageError, decode_upload, to_model_input
from app.inference import LoadedModel
from store.config import Settings

MAX_CONFIG_BYTES = 256 * 1024
TASK_PAGE = 100
MODEL_CLASS = "AuxiliaryDeepGenerativeModel"


class LabelStudioError(ValueError):
    """A request Label Studio sent that this backend cannot serve (answered 422, naming why)."""


class FetchError(Exception):
    """A task image that could not be had; reported in that task's result."""


@dataclass(frozen=True)
class LabellingConfig:
    from_name: str  # the <Choices> control
    to_name: str  # the <Image> it labels
    value: str  # the task data field holding the image's URL
    choices: list[str]


def parse_config(xml: str) -> LabellingConfig:
    """The first <Choices> of the config and the <Image> it labels."""
    if not isinstance(xml, str) or not xml.strip():
        raise LabelStudioError("The labelling config is empty.")
    if len(xml.encode()) > MAX_CONFIG_BYTES:
        raise LabelStudioError(f"The labelling config is larger than {MAX_CONFIG_BYTES} bytes.")
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise LabelStudioError(f"The labelling config is not XML: {error}.") from None
    choices = next(root.iter("Choices"), None)
    if choices is None or not choices.get("name") or not choices.get("toName"):
        raise LabelStudioError("The labelling config needs a <Choices name=… toName=…> of classes.")
    image = next((tag for tag in root.iter("Image") if tag.get("name") == choices.get("toName")), None)
    if image is None or not (image.get("value") or "").startswith("$"):
        raise LabelStudioError(f"The labelling config needs an <Image name=\"{choices.get('toName')}\" value=\"$…\">.")
    names = [choice.get("value") for choice in choices.iter("Choice") if choice.get("value")]
    if len(names) < 2 or len(set(names)) != len(names):
        raise LabelStudioError("The <Choices> need at least two distinct <Choice value=…> classes.")
    return LabellingConfig(choices.get("name"), choices.get("toName"), image.get("value")[1:], names)


class LabelStudioClient:
    """Reads from the configured Label Studio with its token: no other host (a task URL cannot
    make this server reach anywhere else), no redirects, images of at most
    ADGM_LABEL_STUDIO_MAX_IMAGE_BYTES, each request within ADGM_LABEL_STUDIO_TIMEOUT_SECONDS."""

    def __init__(self, settings: Settings):
        if settings.label_studio_url is None:
            raise LabelStudioError("ADGM_LABEL_STUDIO_URL is not set: this server does not know where to fetch "
                                   "task images from.")
        self.base = settings.label_studio_url.rstrip("/") + "/"
        self.origin = urlsplit(self.base)[:2]
        self.max_bytes = settings.label_studio_max_image_bytes
        self.max_pixels = settings.max_image_pixels
        key = settings.label_studio_api_key
        self.headers = {"Authorization": f"Token {key.get_secret_value()}"} if key else {}
        import httpx  # here, not at the top: its import (with its command line's rich and pygments) costs the
        # API a quarter of a second at start, and only a server that talks to Label Studio needs it

        self.client = httpx.Client(timeout=settings.label_studio_timeout_seconds, follow_redirects=False)
        self.timeout_error, self.http_error = httpx.TimeoutException, httpx.HTTPError

    def close(self) -> None:
        self.client.close()

    def url_of(self, reference: object) -> str:
        if not isinstance(reference, str) or not reference:
            raise FetchError("the task has no image URL in its data")
        url = urljoin(self.base, reference)
        if urlsplit(url)[:2] != self.origin:
            raise FetchError(f"the image is not on {self.base} (ADGM_LABEL_STUDIO_URL); it was not fetched")
        return url

    def fetch(self, reference: object) -> bytes:
        url = self.url_of(reference)
        try:
            with self.client.stream("GET", url, headers=self.headers) as response:
                if response.status_code != 200:
                    raise FetchError(f"Label Studio answered {response.status_code} for the image")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(f"the image is larger than {self.max_bytes} bytes")
                content = bytearray()
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > self.max_bytes:
                        raise FetchError(f"the image is larger than {self.max_bytes} bytes")
                return bytes(content)
        except self.timeout_error:
            raise FetchError("Label Studio did not send the image in time") from None
        except self.http_error as error:
            raise FetchError(f"the image could not be fetched ({type(error).__name__})") from None

    def tasks(self, project_id: int, limit: int) -> list[dict]:
        """Every task of the project (with its annotations), at most `limit`."""
        tasks: list[dict] = []
        for page in range(1, limit // TASK_PAGE + 2):
            url = urljoin(self.base, f"api/projects/{project_id}/tasks/?page={page}&page_size={TASK_PAGE}")
            try:
                response = self.client.get(url, headers=self.headers)
            except self.http_error as error:
                raise LabelStudioError(f"Label Studio at {self.base} cannot be reached ({type(error).__name__}).") from None
            if response.status_code == 404 and page > 1:  # past the last page
                break
            if response.status_code != 200:
                raise LabelStudioError(f"Label Studio answered {response.status_code} listing project {project_id}'s "
                                       f"tasks: check ADGM_LABEL_STUDIO_API_KEY.")
            batch = response.json()
            tasks += [task for task in batch if isinstance(task, dict) and isinstance(task.get("id"), int)]
            if len(batch) < TASK_PAGE or len(tasks) >= limit:
                break
        return sorted(tasks, key=lambda task: task["id"])[:limit]

    def model_input(self, reference: object, shape: tuple[int, int]) -> np.ndarray:
        try:
            return to_model_input(decode_upload(self.fetch(reference), self.max_pixels), shape)
        except ImageError as error:
            raise FetchError(f"the image cannot be read: {error}") from None


def predict(tasks: list, config: LabellingConfig, model: LoadedModel, fetcher: LabelStudioClient) -> list[dict]:
    """One prediction per task, in order; a task whose image cannot be had gets an empty result
    and an `error` saying why."""
    choice_of = {}
    for k, name in enumerate(model.class_names):
        if name in config.choices:
            choice_of[k] = name
    images, answers = {}, []
    for position, task in enumerate(tasks):
        try:
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise FetchError("the task has no data")
            images[position] = fetcher.model_input(task["data"].get(config.value), model.image_shape)
        except FetchError as error:
            task_id = task.get("id") if isinstance(task, dict) else None
            answers.append({"result": [], "score": 0.0, "model_version": model.id, "error": f"task {task_id}: {error}"})
            continue
        answers.append(None)
    if images:
        probabilities, _ = model.classify(np.stack(list(images.values())), novelty=False)
        for position, p in zip(images, probabilities):
            label = int(np.argmax(p))
            if label not in choice_of:
                answers[position] = {"result": [], "score": 0.0, "model_version": model.id,
                                     "error": f"class {model.class_names[label]!r} of model {model.id} is not a "
                                              f"<Choice> of this project"}
                continue
            answers[position] = {
                "result": [{"from_name": config.from_name, "to_name": config.to_name, "type": "choices",
                            "value": {"choices": [choice_of[label]]}}],
                "score": float(p[label]), "model_version": model.id,
            }
    return answers
