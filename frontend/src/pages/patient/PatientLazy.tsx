// The patient screens visited now and then (adding a record, training use), fetched on the first visit
// (components/LazyScreen) so they stay out of the portal's first load.
import { lazyScreen } from "../../components/LazyScreen";

export const AddRecordScreen = lazyScreen<object>(
  () => import("./AddRecord").then((module) => ({ default: module.AddRecord })),
  "Add a record",
  "the page",
);

export const TrainingUseScreen = lazyScreen<object>(
  () => import("./TrainingUse").then((module) => ({ default: module.TrainingUse })),
  "Training use",
  "the page",
);
