// Hands bytes fetched through the API client (so the session cookie went with them and a refusal came
// back as an ApiError) to the browser as a file to keep.
export function saveAs(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the file once the click is handled; free the memory after.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

const SUFFIXES: Record<string, string> = {
  "application/pdf": "pdf",
  "image/png": "png",
  "image/jpeg": "jpg",
  "application/dicom": "dcm",
};

/** The file name a record's bytes are saved under: record-<id>.<suffix of its content type>. */
export function recordFileName(id: string, contentType: string): string {
  return `record-${id}.${SUFFIXES[contentType] ?? "bin"}`;
}
