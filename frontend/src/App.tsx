// The frame of every screen (skip link, header with the role's navigation and sign-out, main) and
// the routing from a path to its screen. Signed-out visitors go to sign-in and come back after.
import { useEffect } from "react";
import { ErrorNotice, Loading } from "./components/Notices";
import { Notifications } from "./components/Notifications";
import { Page } from "./components/Page";
import { BreakGlassReviews } from "./pages/admin/BreakGlassReviews";
import { Doctors } from "./pages/admin/Doctors";
import { TrainingScreen } from "./pages/admin/TrainingLazy";
import { Hospitals } from "./pages/consortium/Hospitals";
import { BreakGlass } from "./pages/doctor/BreakGlass";
import { Chart } from "./pages/doctor/Chart";
import { Patients } from "./pages/doctor/Patients";
import { RequestAccess } from "./pages/doctor/RequestAccess";
import { AccessLog } from "./pages/patient/AccessLog";
import { Consents } from "./pages/patient/Consents";
import { Grant } from "./pages/patient/Grant";
import { AddRecordScreen, TrainingUseScreen } from "./pages/patient/PatientLazy";
import { Records } from "./pages/patient/Records";
import { Requests } from "./pages/patient/Requests";
import { Profile } from "./pages/Profile";
import { RecordView } from "./pages/RecordView";
import { SignIn } from "./pages/SignIn";
import { Link, matchPath, navigate, useLocation } from "./router";
import { homeOf, navFor } from "./routes";
import { SessionProvider, safeNext, signInPath, useSession } from "./session";
import type { Me } from "./api/types";

function NotFound() {
  return (
    <Page title="Page not found">
      <p>
        There is nothing at this address. <Link to="/">Go to the start page</Link>.
      </p>
    </Page>
  );
}

function NotForYou() {
  return (
    <Page title="Not available">
      <p>This screen is for another role.</p>
    </Page>
  );
}

function screenFor(path: string, me: Me) {
  const patient = me.role === "patient";
  const doctor = me.role === "doctor";
  if (path === "/profile") return <Profile />;
  if (path === "/records/new") return patient ? <AddRecordScreen /> : <NotForYou />;
  let params = matchPath("/records/:id", path);
  if (params?.id) return patient || doctor ? <RecordView id={params.id} /> : <NotForYou />;
  if (path === "/records") return patient ? <Records /> : <NotForYou />;
  if (path === "/consents") return patient ? <Consents /> : <NotForYou />;
  if (path === "/consents/new") return patient ? <Grant /> : <NotForYou />;
  if (path === "/patients") return doctor ? <Patients /> : <NotForYou />;
  if (path === "/requests") return patient ? <Requests /> : doctor ? <RequestAccess /> : <NotForYou />;
  if (path === "/access-log") return patient ? <AccessLog /> : <NotForYou />;
  if (path === "/training-use") return patient ? <TrainingUseScreen /> : <NotForYou />;
  if (path === "/break-glass") return doctor ? <BreakGlass /> : <NotForYou />;
  if (path === "/break-glass/reviews") return me.role === "hospital_admin" ? <BreakGlassReviews /> : <NotForYou />;
  if (path === "/doctors") return me.role === "hospital_admin" ? <Doctors /> : <NotForYou />;
  if (path.startsWith("/training/")) return me.role === "hospital_admin" ? <TrainingScreen path={path} /> : <NotForYou />;
  if (path === "/hospitals") return me.role === "consortium_admin" ? <Hospitals /> : <NotForYou />;
  params = matchPath("/patients/:address", path);
  if (params?.address) return doctor ? <Chart address={params.address} /> : <NotForYou />;
  return <NotFound />;
}

function Header() {
  const { me, signOut } = useSession();
  const { path } = useLocation();
  return (
    <header className="site-header">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Link to="/" className="brand">
        HealthHash
      </Link>
      {me ? <Notifications me={me} /> : null}
      {me ? (
        <nav aria-label="Main">
          <ul>
            {navFor(me.role).map((link) => (
              <li key={link.to}>
                <Link to={link.to} aria-current={path === link.to ? "page" : undefined}>
                  {link.label}
                </Link>
              </li>
            ))}
            <li>
              <button type="button" className="link" onClick={() => void signOut().catch(() => navigate("/sign-in"))}>
                Sign out <span className="visually-hidden">{me.username}</span>
              </button>
            </li>
          </ul>
        </nav>
      ) : null}
    </header>
  );
}

function Screen() {
  const { state, retry } = useSession();
  const { path, href, query } = useLocation();
  const signedIn = state.status === "signed-in";

  useEffect(() => {
    if (state.status === "signed-out" && path !== "/sign-in") {
      navigate(path === "/" ? "/sign-in" : signInPath(href, false), { replace: true });
    }
    if (signedIn && (path === "/" || path === "/sign-in")) {
      navigate(safeNext(query.get("next")) ?? homeOf(state.me.role), { replace: true });
    }
  }, [state, path, href, signedIn, query]);

  if (state.status === "loading") return <Loading what="HealthHash" />;
  if (state.status === "unreachable") {
    return (
      <Page title="HealthHash">
        <ErrorNotice error={state.error} onRetry={retry} />
      </Page>
    );
  }
  if (!signedIn) return path === "/sign-in" ? <SignIn /> : null;
  if (path === "/" || path === "/sign-in") return null;
  return screenFor(path, state.me);
}

export function App() {
  return (
    <SessionProvider>
      <Header />
      <main id="main" tabIndex={-1}>
        <Screen />
      </main>
      <footer className="site-footer">
        <p>Your records are sealed; every consent is signed by you and kept on an Ethereum ledger.</p>
      </footer>
    </SessionProvider>
  );
}
