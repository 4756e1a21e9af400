/** Kubernetes name syntaxes NetworkPolicy uses (apimachinery's validation rules). Pure. */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `s` is not a DNS-1123 label (a namespace name), or undefined when it is one. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s.length <= 63 && DNS1123_LABEL.test(s)) return undefined;
  return `'${s}' is not a valid DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit`;
}

/** Why `s` is not a DNS-1123 subdomain (an object name), or undefined when it is one. */
export function dnsSubdomainProblem(s: string): string | undefined {
  if (s.length <= 253 && DNS1123_SUBDOMAIN.test(s)) return undefined;
  return `'${s}' is not a valid DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit`;
}

/**
 * Why `s` is not an IANA_SVC_NAME (a named port), or undefined when it is one: 1-15
 * lower-case letters, digits and '-', at least one letter, no leading, trailing or double '-'.
 */
export function portNameProblem(s: string): string | undefined {
  if (s.length >= 1 && s.length <= 15 && /^[-a-z0-9]+$/.test(s) && /[a-z]/.test(s) && !s.includes('--') && !s.startsWith('-') && !s.endsWith('-')) {
    return undefined;
  }
  if (/^\d+$/.test(s)) return `'${s}' is a string, not a port number: write the number without quotes (a port name needs a letter)`;
  return `'${s}' is not a valid port name: 1-15 lower-case letters, digits and '-', with at least one letter, no leading, trailing or double '-'`;
}
