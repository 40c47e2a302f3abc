module github.com/mptp/mptp

go 1.26

require (
	github.com/flynn/noise v1.1.0
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.50.0
)

require golang.org/x/sys v0.43.0 // indirect
