/** Policy texts shared by the policy tests. */
export const HEAD = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n';

/** The example of the Kubernetes documentation, verbatim. */
export const TEST_NETWORK_POLICY = `${HEAD}metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`;
