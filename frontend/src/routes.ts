// Where each role lands and which links its navigation shows.
import type { Role } from "./api/types";

export function homeOf(role: Role): string {
  if (role === "patient") return "/records";
  if (role === "doctor") return "/patients";
  if (role === "hospital_admin") return "/doctors";
  if (role === "consortium_admin") return "/hospitals";
  return "/profile";
}

export type NavLink = { to: string; label: string };

export function navFor(role: Role): NavLink[] {
  const own: NavLink[] =
    role === "patient"
      ? [
          { to: "/records", label: "My records" },
          { to: "/consents", label: "My consents" },
          { to: "/requests", label: "Access requests" },
          { to: "/access-log", label: "Access log" },
          { to: "/training-use", label: "Training use" },
        ]
      : role === "doctor"
        ? [
            { to: "/patients", label: "My patients" },
            { to: "/requests", label: "Request access" },
            { to: "/break-glass", label: "Break-glass" },
          ]
        : [];
  if (role === "hospital_admin") own.push({ to: "/doctors", label: "Doctors" });
  if (role === "hospital_admin") own.push({ to: "/break-glass/reviews", label: "Break-glass reviews" });
  if (role === "hospital_admin") own.push({ to: "/training/plans", label: "Training plans" });
  if (role === "hospital_admin") own.push({ to: "/training/jobs", label: "Training jobs" });
  if (role === "consortium_admin") own.push({ to: "/hospitals", label: "Hospitals" });
  return [...own, { to: "/profile", label: "Profile" }];
}
