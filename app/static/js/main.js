// Entry point: wires the page's parts together.
import { setUpClassify } from "./classify.js";
import { setUpLabelNext } from "./labelnext.js";
import { followNewJob, setUpJobs } from "./jobs.js";
import { loadModels, setUpModels } from "./models.js";
import { setUpTrainForm } from "./train.js";

function useModel(modelId) {
  loadModels(modelId);
  document.getElementById("try").scrollIntoView({ behavior: "smooth", block: "start" });
}

setUpTrainForm(followNewJob);
setUpJobs({
  onJobFinished: (job) => {
    if (job.status === "succeeded") loadModels(job.model_id);
  },
  onUseModel: useModel,
});
setUpModels();
setUpClassify();
setUpLabelNext(followNewJob);
