// Uploads with progress: fetch() reports no upload progress, XMLHttpRequest does. Same session
// cookie and CSRF header as api.ts's call(); errors come back as ApiError like every other call.
import { ApiError, csrf } from "./api";

/** PUTs `file` as the body to `path`; `progress(sent, total)` follows the bytes sent. Resolves with the JSON answer. */
export function upload<T>(path: string, file: Blob, progress: (sent: number, total: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", path);
    request.setRequestHeader("X-CSRF-Token", csrf());
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.onprogress = (event) => progress(event.loaded, event.lengthComputable ? event.total : file.size);
    request.onerror = () => reject(new ApiError(0, undefined, "the upload was cut off (corrald cannot be reached)"));
    request.onabort = () => reject(new ApiError(0, undefined, "the upload was cancelled"));
    request.onload = () => {
      let data: unknown = null;
      try {
        data = request.responseText ? JSON.parse(request.responseText) : null;
      } catch {
        data = request.responseText;
      }
      if (request.status >= 200 && request.status < 300) return resolve(data as T);
      const error = (data as { error?: { field?: string; message?: string } } | null)?.error;
      reject(new ApiError(request.status, error?.field, error?.message ?? `${request.status} ${request.statusText}`));
    };
    request.send(file);
  });
}
