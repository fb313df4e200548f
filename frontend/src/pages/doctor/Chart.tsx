// A patient's chart as a doctor may see it: the records the patient's consents cover (the API decides
// which, and logs the listing in the patient's access log), adding a record where a treatment consent
// allows it, and asking a training job's model about the patient.
import { useState } from "react";
import { shortHex } from "../../lib/format";
import { Page } from "../../components/Page";
import { RecordList } from "../patient/Records";
import { Link } from "../../router";
import { ChartAddRecord } from "./ChartAddRecord";
import { ChartPredict } from "./ChartPredict";

export function Chart({ address }: { address: string }) {
  // A new record is listed by reading the list again (a fresh list: filters back to all categories).
  const [listed, setListed] = useState(0);
  return (
    <Page title={`Patient ${shortHex(address)}`}>
      <p className="hint">
        Address <code className="address">{address}</code>. You see the records this patient's consents cover.
      </p>
      <RecordList key={listed} patient={address} caption={`Records of patient ${address}`} />
      <div className="chart-tools">
        <ChartAddRecord patient={address} onAdded={() => setListed((n) => n + 1)} />
        <ChartPredict patient={address} />
      </div>
      <p>
        <Link to="/patients">All my patients</Link>
      </p>
    </Page>
  );
}
