// What the admin screens share about a Directory entry (a hospital or a doctor): its status on the chain
// in words (pending while the signed action is mined and indexed, then active, inactive or failed with
// the chain's reason), and the password form that signs a deactivation with the admin's key.
import { PasswordConfirmForm } from "../../components/PasswordConfirmForm";

export type EntryStatus = { status: string; action: { status: string; error_code: string } | null };

const LABELS: Record<string, { label: string; tone: string }> = {
  active: { label: "Active", tone: "ok" },
  inactive: { label: "Inactive", tone: "ended" },
  failed: { label: "Failed", tone: "bad" },
};

/** The entry's status in words; "pending" says how far its action got (queued, sent, mined). */
export function statusInWords(entry: EntryStatus): { label: string; tone: string; inFlight: boolean } {
  if (entry.status === "pending") {
    const step = entry.action?.status;
    const label =
      step === "sent"
        ? "Pending: sent, waiting to be mined"
        : step === "confirmed"
          ? "Pending: mined, waiting for the Directory"
          : "Pending: queued for the chain";
    return { label, tone: "pending", inFlight: true };
  }
  const known = LABELS[entry.status] ?? { label: entry.status, tone: "ended" };
  const reason = entry.status === "failed" && entry.action?.error_code ? ` (${entry.action.error_code})` : "";
  return { label: `${known.label}${reason}`, tone: known.tone, inFlight: false };
}

export function EntryBadge({ entry }: { entry: EntryStatus }) {
  const words = statusInWords(entry);
  return (
    <span className={`badge badge-${words.tone}`}>
      {words.inFlight ? <span className="spinner" aria-hidden="true" /> : null}
      {words.label}
    </span>
  );
}

/** Asks the admin's password and sends `deactivate` with it; API errors land next to the field. */
export function DeactivateForm({
  id,
  name,
  deactivate,
  onDone,
  onCancel,
}: {
  id: string;
  name: string;
  deactivate: (password: string) => Promise<unknown>;
  onDone: () => void;
  onCancel: () => void;
}) {
  return (
    <PasswordConfirmForm
      id={`deactivate-password-${id}`}
      aria-label={`Deactivate ${name}`}
      action="Sign and deactivate"
      actionClassName="danger"
      missing="Enter your password to sign the deactivation."
      confirm={async (password) => {
        await deactivate(password);
        onDone();
      }}
      onCancel={onCancel}
    >
      <p className="plain-words">
        {name} will be marked inactive in the chain's Directory: consents to them stop working.
      </p>
    </PasswordConfirmForm>
  );
}

/** An entry's actions cell: a Deactivate button while it is active, and the signing form once pressed. */
export function DeactivateCell({
  id,
  name,
  active,
  open,
  onOpen,
  onClose,
  deactivate,
  onDeactivated,
}: {
  id: string;
  name: string;
  active: boolean;
  open: boolean;
  onOpen: () => void;
  onClose: () => void;
  deactivate: (password: string) => Promise<unknown>;
  onDeactivated: () => void;
}) {
  if (open) {
    return (
      <DeactivateForm
        id={id}
        name={name}
        deactivate={deactivate}
        onDone={() => {
          onClose();
          onDeactivated();
        }}
        onCancel={onClose}
      />
    );
  }
  return active ? (
    <button type="button" className="small danger" onClick={onOpen}>
      Deactivate <span className="visually-hidden">{name}</span>
    </button>
  ) : null;
}
