// The hospital admin's training screens by path, loaded on demand (React.lazy in TrainingLazy.tsx), so
// the portal's first load does not carry them.
import { Page } from "../../components/Page";
import { Link, matchPath } from "../../router";
import { Job } from "./Job";
import { JobNew } from "./JobNew";
import { Jobs } from "./Jobs";
import { TrainingPlans } from "./TrainingPlans";

export default function TrainingRoutes({ path }: { path: string }) {
  if (path === "/training/plans") return <TrainingPlans />;
  if (path === "/training/jobs") return <Jobs />;
  if (path === "/training/jobs/new") return <JobNew />;
  const params = matchPath("/training/jobs/:job", path);
  if (params?.job) return <Job id={params.job} />;
  return (
    <Page title="Page not found">
      <p>
        There is nothing at this address. <Link to="/training/jobs">See the training jobs</Link>.
      </p>
    </Page>
  );
}
