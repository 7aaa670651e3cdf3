package scaletest

import (
	"context"
	"errors"
	"fmt"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Starve makes API Priority and Fairness put every request of user in a
// priority level of its own, named after it, with the fewest seats it can
// have (1 share of the server's concurrency, none borrowed) and short
// queues, and binds the user to cluster-admin, so RBAC is not what stops
// it. It waits until the API server has set the level up and returns its
// seats, and what undoes all three.
func Starve(ctx context.Context, admin kubernetes.Interface, user string, queues, queueLength int32) (undo func(context.Context) error, seats float64, err error) {
	fc := admin.FlowcontrolV1()
	plc := &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: new(int32(1)),
				LendablePercent:          new(int32(0)),
				BorrowingLimitPercent:    new(int32(0)),
				LimitResponse: flowcontrolv1.LimitResponse{
					Type:    flowcontrolv1.LimitResponseTypeQueue,
					Queuing: &flowcontrolv1.QueuingConfiguration{Queues: queues, HandSize: 2, QueueLengthLimit: queueLength},
				},
			},
		},
	}
	all := []string{flowcontrolv1.VerbAll}
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: user},
			MatchingPrecedence:         1000, // before global-default (9900), after the system's own
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByNamespaceType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:         []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: user}}},
				ResourceRules:    []flowcontrolv1.ResourcePolicyRule{{Verbs: all, APIGroups: all, Resources: all, ClusterScope: true, Namespaces: []string{flowcontrolv1.NamespaceEvery}}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: all, NonResourceURLs: all}},
			}},
		},
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	undo = func(ctx context.Context) error {
		var errs []error
		for _, del := range []func() error{
			func() error { return fc.FlowSchemas().Delete(ctx, user, metav1.DeleteOptions{}) },
			func() error {
				return fc.PriorityLevelConfigurations().Delete(ctx, user, metav1.DeleteOptions{})
			},
			func() error {
				return admin.RbacV1().ClusterRoleBindings().Delete(ctx, user, metav1.DeleteOptions{})
			},
		} {
			if err := del(); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("undo the starvation: %w", err)
		}
		return nil
	}
	if _, err := fc.PriorityLevelConfigurations().Create(ctx, plc, metav1.CreateOptions{}); err != nil {
		return nil, 0, fmt.Errorf("create the starved priority level: %w", err)
	}
	if _, err := fc.FlowSchemas().Create(ctx, fs, metav1.CreateOptions{}); err != nil {
		return nil, 0, fmt.Errorf("create the starved flow schema: %w (%v)", err, undo(ctx))
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return nil, 0, fmt.Errorf("bind the starved user: %w (%v)", err, undo(ctx))
	}
	if seats, err = waitForLevel(ctx, admin, user); err != nil {
		return nil, 0, errors.Join(err, undo(ctx))
	}
	return undo, seats, nil
}

// waitForLevel waits, up to a minute, until the API server has set up the
// starved priority level, and returns its seats.
func waitForLevel(ctx context.Context, admin kubernetes.Interface, level string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		seats, err := SumMetric(ctx, admin, "apiserver_flowcontrol_nominal_limit_seats{", func(l map[string]string) bool {
			return l["priority_level"] == level
		})
		if err == nil && seats > 0 {
			return seats, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the API server did not set up priority level %s: %w (%v)", level, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
