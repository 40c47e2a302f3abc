module github.com/mptp/mptp

go 1.26

require go.uber.org/goleak v1.3.0

require (
	github.com/flynn/noise v1.1.0 // indirect
	golang.org/x/crypto v0.50.0 // indirect
	golang.org/x/sys v0.43.0 // indirect
)
