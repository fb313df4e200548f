// A patient's chart as a doctor may see it: the records the patient's consents cover (the API
// decides which, and logs the listing in the patient's access log).
import { shortHex } from "../../lib/format";
import { Page } from "../../components/Page";
import { RecordList } from "../patient/Records";
import { Link } from "../../router";

export function Chart({ address }: { address: string }) {
  return (
    <Page title={`Patient ${shortHex(address)}`}>
      <p className="hint">
        Address <code className="address">{address}</code>. You see the records this patient's consents cover.
      </p>
      <RecordList patient={address} caption={`Records of patient ${address}`} />
      <p>
        <Link to="/patients">All my patients</Link>
      </p>
    </Page>
  );
}
