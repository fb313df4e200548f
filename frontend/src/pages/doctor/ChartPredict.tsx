// Asking a training job's model about the patient whose chart is open: benign or malignant, from the
// laboratory results the doctor may open for treatment. The API picks the job's latest version confirmed on
// chain (else its latest), opens each record through its one door and writes the prediction in the
// patient's access log. Models come from GET /api/models; the API lists them only to hospital admins, so a
// doctor may also name the job by its number or on-chain id (the API checks their hospital takes part).
import { useState, type FormEvent } from "react";
import { api, ApiError, call } from "../../api/client";
import type { ModelJob, Prediction } from "../../api/types";
import { Hex } from "../../components/Chain";
import { FORM, FormError, SelectField, TextField, type FormErrors } from "../../components/Fields";
import { ErrorNotice } from "../../components/Notices";
import { useLoad } from "../../hooks/useLoad";
import { consentRefusal } from "../../lib/refusals";

const OTHER = "other";
const JOB_REFERENCE = /^(0x[0-9a-fA-F]{64}|[0-9]{1,18})$/;
const MODELS_PAGE = 50;

/** The API's refusal said next to the job field ("job") or for the whole form, in words. */
function predictionErrors(error: unknown): FormErrors {
  if (error instanceof ApiError) {
    if (error.code === "unknown_job") return { job: "No such training job, or your hospital does not take part in it." };
    if (error.code === "no_model_version") {
      return { job: "This training job has no model version yet: no round of training has finished." };
    }
    if (error.code === "unknown_patient") {
      return { [FORM]: "None of this patient's laboratory results is yours to open, so the model has nothing to read." };
    }
    if (error.code === "missing_features") return { [FORM]: `The model cannot answer. ${error.message}` };
    if (error.code === "broken_model") {
      return { [FORM]: "The model version's stored weights do not match its weights hash, so it was not used." };
    }
  }
  return { [FORM]: error instanceof Error ? error.message : "Something went wrong in the page." };
}

function percent(probability: number): string {
  return `${(probability * 100).toFixed(1)}%`;
}

function OnChain({ chain }: { chain: Prediction["chain"] }) {
  if (chain.status === "confirmed") {
    return (
      <>
        published in block {chain.block ?? "?"}, tx {chain.tx ? <Hex value={chain.tx} label="transaction" /> : "?"}
      </>
    );
  }
  if (chain.status === "failed") return <>publishing it on the chain failed</>;
  if (chain.status === "queued") return <>on its way to the chain</>;
  return <>not published on the chain yet</>;
}

function Answer({ prediction }: { prediction: Prediction }) {
  const label = prediction.label === "malignant" ? "Malignant" : "Benign";
  return (
    <div className="notice" role="status" data-testid="prediction">
      <p>
        <strong>{label}.</strong> The model puts the probability of malignant at {percent(prediction.probability)}.
      </p>
      <dl className="facts">
        <dt>Model</dt>
        <dd>
          {prediction.job.name} (job {prediction.job.number})
        </dd>
        <dt>Version</dt>
        <dd>round {prediction.round}</dd>
        <dt>On chain</dt>
        <dd>
          <OnChain chain={prediction.chain} />
        </dd>
        <dt>Weights hash</dt>
        <dd>
          <Hex value={prediction.weights_hash} label="weights hash" />
        </dd>
        <dt>Records read</dt>
        <dd>{prediction.records_used}</dd>
      </dl>
      <p className="hint">
        This prediction, and each record the model read, is written in the patient's access log. It is a model's
        answer, not a diagnosis.
      </p>
    </div>
  );
}

function modelLabel(model: ModelJob): string {
  return `${model.job.name} (job ${model.job.number}), round ${model.latest_round}`;
}

export function ChartPredict({ patient }: { patient: string }) {
  const models = useLoad(
    () => call(api.GET("/api/models", { params: { query: { limit: MODELS_PAGE } } })).then((page) => page.results),
    [],
  );
  const listed = models.data ?? [];
  const [choice, setChoice] = useState("");
  const [jobText, setJobText] = useState("");
  const [errors, setErrors] = useState<FormErrors>({});
  const [refusal, setRefusal] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [prediction, setPrediction] = useState<Prediction | null>(null);

  const chosen = choice || listed[0]?.job.id || OTHER;
  const typed = chosen === OTHER;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setRefusal(null);
    setPrediction(null);
    const job = typed ? jobText.trim() : chosen;
    if (typed && !JOB_REFERENCE.test(job)) {
      setErrors({ job: "Enter the training job's number (such as 3) or its on-chain id (0x and 64 hex digits)." });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      setPrediction(await call(api.POST("/api/models/{job}/predict", { params: { path: { job } }, body: { patient } })));
    } catch (error) {
      const words = consentRefusal(error, "have a model read their laboratory results");
      if (words) setRefusal(words);
      else setErrors(predictionErrors(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="predict-title">
      <h2 id="predict-title">Ask a model</h2>
      <p className="hint">
        The model of a training job your hospital takes part in reads this patient's laboratory results that you may
        open for treatment, and answers benign or malignant. Each record it opens, and the prediction, is written in the
        patient's access log.
      </p>
      {models.error ? <ErrorNotice error={models.error} onRetry={models.reload} /> : null}
      <form className="form narrow" onSubmit={(event) => void submit(event)} noValidate aria-labelledby="predict-title">
        {listed.length ? (
          <SelectField
            id="predict-model"
            label="Model"
            value={chosen}
            error={typed ? undefined : errors.job}
            onChange={(event) => {
              setChoice(event.target.value);
              setErrors({});
            }}
          >
            {listed.map((model) => (
              <option key={model.job.id} value={model.job.id}>
                {modelLabel(model)}
              </option>
            ))}
            <option value={OTHER}>Another training job…</option>
          </SelectField>
        ) : null}
        {typed ? (
          <TextField
            id="predict-job"
            label="Training job"
            value={jobText}
            error={errors.job}
            autoComplete="off"
            spellCheck={false}
            hint="Its number or its on-chain id; your hospital's admin can tell you which jobs have a model."
            onChange={(event) => setJobText(event.target.value)}
          />
        ) : null}
        {refusal ? (
          <div className="notice notice-bad" role="alert" data-testid="predict-refused">
            <p>
              <strong>No prediction.</strong> {refusal}
            </p>
            <p className="hint">This attempt is written in the patient's access log.</p>
          </div>
        ) : null}
        <FormError errors={errors} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || (models.loading && !models.data)}>
            {busy ? "Asking the model…" : "Predict"}
          </button>
        </div>
      </form>
      {prediction ? <Answer prediction={prediction} /> : null}
    </section>
  );
}
