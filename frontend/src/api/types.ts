// Names for the schema's shapes that the pages use; all of them come from schema.d.ts (generated).
import type { components } from "./schema";

type Schemas = components["schemas"];
export type Me = Schemas["Me"];
export type Role = Schemas["RoleEnum"];
export type Consent = Schemas["ConsentOut"];
export type RecordMeta = Schemas["RecordOut"];
export type OpenedRecord = Schemas["OpenedRecordOut"];
export type Doctor = Schemas["Doctor"];
export type Hospital = Schemas["Hospital"];
export type Category = Schemas["CategoryEnum"];
export type Purpose = Schemas["PurposeEnum"];
export type ErrorBody = Schemas["ApiError"];
export type AccessLogEntry = Schemas["AccessLogEntryOut"];
export type AccessLogProof = Schemas["AccessLogProofOut"];
export type BreakGlass = Schemas["BreakGlassOut"];
export type TrainingJob = Schemas["JobOut"];
export type TrainingJobDetail = Schemas["JobDetailOut"];
export type TrainingRound = Schemas["RoundOut"];
export type TrainingParticipant = Schemas["ParticipantOut"];
export type ModelVersionSummary = Schemas["VersionSummaryOut"];
export type TrainingJobCreate = Schemas["JobCreateIn"];
export type DoctorEntry = Schemas["DoctorDetailOut"];
export type HospitalEntry = Schemas["HospitalDetailOut"];
