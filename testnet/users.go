package testnet

import "fmt"

// demoNames are the first demo users' names; later ones are user5, user6…
var demoNames = []string{"alice", "bob", "carol", "dave"}

// DemoUser is a user Up signs in.
type DemoUser struct{ Name, Password string }

// DemoUsers are the first n demo users: alice, bob, carol, dave, then
// user5, user6… Each password is the name followed by "-password".
func DemoUsers(n int) []DemoUser {
	users := make([]DemoUser, n)
	for i := range users {
		name := fmt.Sprintf("user%d", i+1)
		if i < len(demoNames) {
			name = demoNames[i]
		}
		users[i] = DemoUser{Name: name, Password: name + "-password"}
	}
	return users
}
