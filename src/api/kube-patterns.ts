// Patterns of Kubernetes names and values that spec fields take (the CRD and local validation).

/** A Kubernetes object name (DNS-1123 subdomain), e.g. a Secret's. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** A non-empty Kubernetes label value, e.g. a zone name such as us-east-1a. */
export const LABEL_VALUE_PATTERN = '^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
/** A Kubernetes resource quantity, e.g. 50m, 1, 64Mi, 1.5Gi. */
export const QUANTITY_PATTERN = '^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][0-9]+)?$';
